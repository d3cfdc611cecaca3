"""``isoeps audit``: a one-run empirical privacy audit of a suite's cells.

Each selected private (or ``inf``) cell is run again as a separate, audited run into
``--out/<cell slug>``: m canaries are added to its private split by fair coins, and the
run's ``audit.json`` holds epsilon_lower at confidence 1 - beta beside the target and the
re-accounted epsilon (Steinke, Nasr and Jagielski 2023; :mod:`isoeps.bench.audit`).
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
        "1 when one exceeds it (a privacy bug in the method or the audit).",
    )
    add_suite_arguments(parser)
    parser.add_argument("--m", type=int, default=200, help="canaries (default 200)")
    parser.add_argument("--k", type=int, default=50, help="guesses each side (default 50)")
    parser.add_argument("--beta", type=float, default=0.05, help="1 - confidence (0.05)")
    parser.add_argument("--samples-per-canary", type=int, default=1, metavar="S")
    parser.add_argument("--open-samples", type=int, default=0, metavar="N")
    parser.add_argument("--method", help="audit only this method label")
    parser.add_argument("--budget", help="audit only this budget (e.g. 1 or inf)")
    parser.add_argument("--seed", type=int, help="audit only this seed")
    parser.add_argument("--device", help="cpu or cuda")
    parser.add_argument("--out", required=True, help="folder for the audited runs")
    parser.set_defaults(handler=_audit)


def _selected(cells: list[Any], args: argparse.Namespace) -> list[Any]:
    """The cells the filters keep; public cells are left out (they have nothing to audit)."""
    from isoeps.bench.audit import AuditError

    chosen = [
        c
        for c in cells
        if (args.method is None or c.method_label == args.method)
        and (args.budget is None or c.budget == args.budget)
        and (args.seed is None or c.seed == args.seed)
    ]
    private = [c for c in chosen if c.budget != "public"]
    if chosen and not private:
        raise AuditError("every selected cell has budget 'public': there is nothing to audit")
    if not private:
        raise AuditError("no cell matches --method/--budget/--seed")
    return private


def _audit(args: argparse.Namespace) -> int:
    from pathlib import Path

    from isoeps.bench import cells as cells_module
    from isoeps.bench.audit import AuditSettings, run_audit
    from isoeps.cli._common import check_device, emit
    from isoeps.cli.run import suite_from_args

    spec, _ = suite_from_args(args, device=args.device)
    check_device(spec.runtime.device)
    settings = AuditSettings(
        m=args.m,
        k=args.k,
        beta=args.beta,
        samples_per_canary=args.samples_per_canary,
        open_samples=args.open_samples,
    )
    settings.check()
    rows, lines = [], []
    for cell in _selected(cells_module.expand(spec), args):
        outcome = run_audit(cell, Path(args.out) / cell.slug, spec.runtime, settings=settings)
        rows.append({"cell_id": cell.cell_id, "slug": cell.slug, **outcome.to_dict()})
        target = "inf" if cell.epsilon is None else f"{cell.epsilon:g}"
        lines.append(
            f"{cell.slug}: epsilon_lower={outcome.epsilon_lower:.3f} (target {target}, "
            f"m={settings.m}, k={settings.k}, beta={settings.beta:g}, "
            f"{outcome.correct}/{2 * settings.k} right)"
        )
    emit(args, {"audits": rows}, "\n".join(lines))
    violated = [r for r in rows if r["target_epsilon"] is not None]
    return 1 if any(r["epsilon_lower"] > r["target_epsilon"] for r in violated) else 0
