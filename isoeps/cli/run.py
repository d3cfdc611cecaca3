"""``isoeps run``: run a suite (default: the demo suite) into the store, then report it."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "run",
        parents=[parent],
        help="run a suite (default: demo) and write its report",
        description="Run every unfinished cell of a suite, then write reports/<suite>/. "
        "Exit 0 ok, 1 cells failed, 2 config error.",
    )
    add_suite_arguments(parser)
    parser.add_argument(
        "--from",
        dest="from_config",
        metavar="RUN/config.yaml",
        help="repeat a run from its resolved config",
    )
    parser.add_argument("--jobs", type=int, help="worker processes (runtime: not hashed)")
    parser.add_argument("--device", help="cpu or cuda (runtime: not hashed)")
    parser.add_argument("--executor", help="local, ray or slurm (runtime: not hashed)")
    parser.add_argument(
        "--address",
        help="--executor ray: auto, HOST:PORT or ray://HOST:PORT "
        "(default: a local cluster); short for runtime.executor_options.address",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print each cell's status, DP plan and time estimate; run nothing",
    )
    parser.add_argument("--only", help="select cells: method=...,budget=...,dataset=...,seed=...")
    parser.add_argument("--rerun-failed", action="store_true", help="re-run failed cells")
    parser.add_argument("--force", action="store_true", help="re-run finished cells too")
    parser.add_argument(
        "--secure",
        action="store_true",
        help="cryptographic sampling and noise, no stored seed for them",
    )
    parser.add_argument("--results", help="the store folder (default: runtime.results)")
    parser.add_argument("--reports", help="report folder (default: reports/<suite>)")
    parser.add_argument("--no-report", action="store_true", help="skip writing the report")
    parser.set_defaults(handler=_run)


def add_suite_arguments(parser: argparse.ArgumentParser) -> None:
    """``[SUITE] [key=value ...]`` (anywhere among the options) and ``--set key=value``."""
    from isoeps.cli._common import positionals_anywhere

    positionals_anywhere(parser)
    parser.add_argument(
        "items",
        nargs="*",
        metavar="[SUITE] [key=value]",
        help="a shipped suite name or a YAML path, then dotlist overrides",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="key=value",
        help="a dotlist override (repeatable)",
    )


def suite_from_args(args: argparse.Namespace, **runtime: object):
    from isoeps.bench.session import resolve, runtime_overrides, split_positionals

    source, positional = split_positionals(args.items)
    overrides = [*positional, *args.set, *runtime_overrides(**runtime)]
    spec = resolve(source, overrides, from_config=getattr(args, "from_config", None))
    return spec, overrides


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from isoeps.bench import cells as cells_module
    from isoeps.bench.plan import dry_run, format_rows
    from isoeps.cli._common import check_device, emit
    from isoeps.results import folders, index

    spec, overrides = suite_from_args(
        args,
        jobs=args.jobs,
        device=args.device,
        executor=args.executor,
        secure=args.secure or None,
        results=args.results,
        reports=args.reports,
        **{"executor_options.address": args.address},
    )
    if args.address and spec.runtime.executor != "ray":
        from isoeps.errors import ConfigError

        raise ConfigError(
            f"--address is for --executor ray (runtime.executor is {spec.runtime.executor!r})"
        )
    cells = cells_module.select(cells_module.expand(spec), args.only)
    store = Path(spec.runtime.results)
    if args.dry_run:
        rows = dry_run(cells, store)
        emit(args, {"suite": spec.name, "store": str(store), "cells": rows}, format_rows(rows))
        return 0
    if spec.runtime.executor == "local":  # remote workers have devices of their own
        check_device(spec.runtime.device)
    # one driver per store, for the whole run (cells and report): a second one is refused
    with folders.store_lock(store, command="isoeps run"):
        index.check(store)
        return _drive(args, spec, overrides, cells, store)


def _drive(args: argparse.Namespace, spec, overrides: list[str], cells: list, store) -> int:
    import sys

    from isoeps.bench.runner import run_suite
    from isoeps.cli._common import emit

    summary = run_suite(
        cells,
        store=store,
        runtime=spec.runtime,
        overrides=overrides,
        force=args.force,
        rerun_failed=args.rerun_failed,
        on_outcome=_progress_line,
        verbosity=args.verbose - args.quiet,
    )
    audits = _run_audits(spec, cells, store, force=args.force)
    report_dir = None if args.no_report else _write_suite_report(spec, cells, store)
    payload = {
        "suite": spec.name,
        "store": str(store),
        "report": str(report_dir) if report_dir else None,
        "ran": len(summary.ran),
        "skipped": summary.skipped,
        "failed": summary.failed,
        "audits": [
            {"slug": a.cell.slug, "kind": a.kind, "error": a.error,
             "epsilon_lower": (a.result or {}).get("epsilon_lower")}
            for a in audits
        ],
    }  # fmt: skip
    text = (
        f"suite {spec.name}: {len(summary.ran)} ran, {summary.skipped} skipped (finished), "
        f"{summary.failed_count} failed; store {store}"
        + (f"; report {report_dir}/index.md" if report_dir else "")
    )
    emit(args, payload, text)
    if summary.failed_count:
        for failure in summary.failed:
            print(f"failed: {failure['slug']}: {failure['reason']}", file=sys.stderr)
        print(f"{summary.failed_count} cell(s) failed", file=sys.stderr)
        return 1
    return _audit_verdict(audits)


def _run_audits(spec, cells: list, store, *, force: bool) -> list:
    """The suite's ``audit:`` block, after its cells: each selected cell audited in a separate
    run (:mod:`isoeps.bench.audit_runs`), one line on stderr per audit."""
    import sys

    from isoeps.bench.audit_runs import audit_line, run_audits

    if spec.audit is None:
        return []
    return run_audits(
        cells,
        store=store,
        runtime=spec.runtime,
        audit=spec.audit,
        force=force,
        on_run=lambda run: print(f"[audit] {audit_line(run)}", file=sys.stderr),
    )


def _audit_verdict(audits: list) -> int:
    """1, with the reasons on stderr, when an audit failed or its bound exceeds its target."""
    import sys

    from isoeps.bench.audit_runs import violations

    bad = [a for a in audits if a.result is None] + violations(audits)
    for run in bad:
        why = run.error or "epsilon_lower exceeds the target epsilon: a privacy bug"
        print(f"audit: {run.cell.slug} ({run.kind}): {why}", file=sys.stderr)
    return 1 if bad else 0


def _progress_line(outcome) -> None:
    """One line on stderr per cell as it ends: status, run folder, wall time, reason."""
    import sys
    from pathlib import Path

    note = f" ({outcome.reason})" if outcome.reason else ""
    print(
        f"[{outcome.status}] {Path(outcome.run_dir).name} {outcome.wall_time_s:.1f}s{note}",
        file=sys.stderr,
    )


def _write_suite_report(spec, cells: list, store):
    """Write the report of ``cells`` (their ledgers re-verified) and return its folder."""
    from pathlib import Path

    from isoeps.bench.verify import verify_store
    from isoeps.reports import write_report
    from isoeps.results import load

    report_dir = Path(spec.runtime.reports or Path("reports") / spec.name)
    ids = {c.cell_id for c in cells}
    frame = load(store)
    frame = frame[frame["cell_id"].isin(ids)]
    write_report(
        frame,
        report_dir,
        title=spec.name,
        notice=spec.notice,
        store=store,
        cell_ids=ids,
        unverified=verify_store(store, ids),
    )
    return report_dir
