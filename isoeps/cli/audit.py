"""``isoeps audit``: a one-run empirical privacy audit of a suite's cells.

Each selected private (or ``inf``) cell is run again as a separate, audited run into
``<store>/audits/<kind>/<cell slug>``: m canaries are added to its private split by fair
coins, and the run's ``audit.json`` holds epsilon_lower at confidence 1 - beta beside the
target and the re-accounted epsilon (Steinke, Nasr and Jagielski 2023;
:mod:`isoeps.bench.audit`). The bound goes into the store's index (``audits`` table) and the
report's "audited ε (lower bound)" column. The settings default to the suite's ``audit:``
block, then to :class:`isoeps.bench.spec.AuditSpec`'s defaults; each flag overrides one.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    """Add the ``audit`` command.

    Args:
        subparsers: the ``isoeps`` subcommand group.
        parent: the parser of the options every command shares.
    """
    from isoeps.cli.run import add_suite_arguments

    parser = subparsers.add_parser(
        "audit",
        parents=[parent],
        help="measure a lower bound on epsilon with canaries (one audited run per cell)",
        description="Exit 0 when every audited cell's epsilon_lower is at most its target, "
        "1 when one exceeds it (a privacy bug in the method or the audit) or an audit failed.",
    )
    add_suite_arguments(parser)
    parser.add_argument("--m", type=int, help="canaries (default: the suite's, else 200)")
    parser.add_argument("--k", type=int, help="guesses each side (default: the suite's, else 50)")
    parser.add_argument("--beta", type=float, help="1 - confidence (default 0.05)")
    parser.add_argument("--samples-per-canary", type=int, metavar="S")
    parser.add_argument("--open-samples", type=int, metavar="N")
    parser.add_argument(
        "--white-box",
        action="store_true",
        help="audit the DP-SGD gradients with Dirac gradient canaries instead of the samples",
    )
    parser.add_argument("--method", help="audit only this method label")
    parser.add_argument("--budget", help="audit only this budget (e.g. 1 or inf)")
    parser.add_argument("--seed", type=int, help="audit only this seed")
    parser.add_argument("--force", action="store_true", help="audit again cells already audited")
    parser.add_argument("--device", help="cpu or cuda")
    parser.add_argument("--results", help="the store folder (default: runtime.results)")
    parser.set_defaults(handler=_audit)


def audit_block(spec: Any, args: argparse.Namespace) -> Any:
    """The suite's audit block (or the defaults) with the command line's flags applied."""
    from pydantic import ValidationError

    from isoeps.bench.audit import AuditError
    from isoeps.bench.spec import AuditSpec
    from isoeps.errors import validation_problems

    data = (spec.audit or AuditSpec()).model_dump()
    flags = {
        "m": args.m,
        "k": args.k,
        "beta": args.beta,
        "samples_per_canary": args.samples_per_canary,
        "open_samples": args.open_samples,
        "kinds": ["white-box"] if args.white_box else None,
        "methods": None if args.method is None else [args.method],
        "budgets": None if args.budget is None else [args.budget],
        "seeds": None if args.seed is None else [args.seed],
    }
    data.update({key: value for key, value in flags.items() if value is not None})
    try:
        return AuditSpec.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, AuditSpec, field="audit")
        raise AuditError("audit settings: " + "; ".join(problems)) from None


def _check_selection(cells: list[Any], audit: Any) -> None:
    """Refuse a selection with nothing to audit, naming why."""
    from isoeps.bench.audit import AuditError
    from isoeps.bench.audit_runs import audited_cells

    if audited_cells(cells, audit):
        return
    chosen = [
        c
        for c in cells
        if (audit.methods is None or c.method_label in audit.methods)
        and (audit.seeds is None or c.seed in audit.seeds)
    ]
    if chosen and all(c.budget == "public" for c in chosen):
        raise AuditError("every selected cell has budget 'public': there is nothing to audit")
    raise AuditError("no cell matches --method/--budget/--seed (or the suite's audit block)")


def _audit(args: argparse.Namespace) -> int:
    from pathlib import Path

    from isoeps.bench import cells as cells_module
    from isoeps.bench.audit_runs import audit_line, run_audits, violations
    from isoeps.cli._common import check_device, emit
    from isoeps.cli.run import suite_from_args
    from isoeps.results import folders, index

    spec, _ = suite_from_args(args, device=args.device, results=args.results)
    check_device(spec.runtime.device)
    audit = audit_block(spec, args)
    cells = cells_module.expand(spec)
    _check_selection(cells, audit)
    store = Path(spec.runtime.results)
    with folders.store_lock(store, command="isoeps audit"):  # the index has one writer
        index.check(store)
        runs = run_audits(cells, store=store, runtime=spec.runtime, audit=audit, force=args.force)
    rows = [
        {"cell_id": r.cell.cell_id, "slug": r.cell.slug, "kind": r.kind, "folder": str(r.folder),
         "ran": r.ran, "error": r.error, **(r.result or {})}
        for r in runs
    ]  # fmt: skip
    for row in rows:  # the coins, scores and guesses stay in audit.json
        for key in ("coins", "scores", "guesses"):
            row.pop(key, None)
    emit(args, {"audits": rows}, "\n".join(audit_line(r) for r in runs))
    failed = [r for r in runs if r.result is None]
    return 1 if violations(runs) or failed else 0
