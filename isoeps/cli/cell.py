"""``isoeps cell``: run one cell into a run folder.

Two forms: ``--suite SUITE --id CELL_ID`` runs one expanded cell of a suite into its store
(for sbatch arrays and executors; run ``isoeps results reindex`` afterwards), and
``--method NAME --dataset NAME --epsilon E|inf|public --out DIR`` runs an ad-hoc cell.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    """Add the ``cell`` command.

    Args:
        subparsers: the ``isoeps`` subcommand group.
        parent: the parser of the options every command shares.
    """
    from isoeps.cli._common import positionals_anywhere

    parser = subparsers.add_parser(
        "cell",
        parents=[parent],
        help="run one cell (of a suite, or ad hoc) into a run folder",
        description="Exit 0 when the cell finished, 1 when it failed or was refused.",
    )
    _add_suite_arguments(parser)
    _add_adhoc_arguments(parser)
    _add_run_arguments(parser)
    parser.set_defaults(handler=_cell)
    positionals_anywhere(parser)


def _add_suite_arguments(parser: argparse.ArgumentParser) -> None:
    """The overrides and the ``--suite``/``--id`` form's options."""
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="dotlist overrides rooted at the suite schema",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="key=value",
        help="dotlist override rooted at the suite, e.g. "
        "methods.NAME.config.FIELD=VALUE (the method's label is its name)",
    )
    parser.add_argument("--suite", help="a shipped suite name or YAML path (with --id)")
    parser.add_argument("--id", dest="cell_id", help="the cell id (a unique prefix is enough)")
    parser.add_argument("--results", help="store folder for --suite (default: runtime.results)")


def _add_adhoc_arguments(parser: argparse.ArgumentParser) -> None:
    """The ad-hoc cell's method, dataset, budget, seed, samples, metrics and plugins."""
    from isoeps.cli._common import add_deprecated_alias

    parser.add_argument("--method", help="method registry name (ad-hoc cell)")
    parser.add_argument("--dataset", help="dataset registry name (ad-hoc cell)")
    parser.add_argument("--root", help="dataset root")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--epsilon", help="a number > 0, inf or public")
    parser.add_argument("--delta", type=float, help="default: 1/(N ln N)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--n",
        dest="n_samples",
        type=int,
        default=64,
        metavar="N",
        help="samples to generate (the suite's n_samples; default 64)",
    )
    add_deprecated_alias(parser, "--n-samples", new="--n", dest="n_samples", type=int)
    parser.add_argument("--metrics", default="", help="comma-separated metric names")
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="a module that registers plugins (repeatable)",
    )


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The device, secure mode and the run folder (``--out``, ``--force``)."""
    parser.add_argument("--device", help="cpu or cuda")
    parser.add_argument("--secure", action="store_true")
    parser.add_argument(
        "--out",
        help="the run folder to write (ad-hoc cell); an existing one "
        "must be empty or a run folder isoeps wrote",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="run again a cell whose run folder is finished (replacing it)",
    )


def adhoc_suite_text(args: argparse.Namespace) -> str:
    import json

    from isoeps.errors import ConfigError

    missing = [
        flag
        for flag, value in (
            ("--method", args.method),
            ("--dataset", args.dataset),
            ("--epsilon", args.epsilon),
            ("--out", args.out),
        )
        if not value
    ]
    if missing:
        raise ConfigError(f"an ad-hoc cell needs {', '.join(missing)} (or use --suite and --id)")
    budget: object = args.epsilon
    if args.epsilon not in ("inf", "public"):
        try:
            budget = float(args.epsilon)
        except ValueError:
            raise ConfigError(
                f"--epsilon must be a number > 0, inf or public, got {args.epsilon!r}"
            ) from None
    dataset: dict[str, object] = {"name": args.dataset, "resolution": args.resolution}
    if args.root:
        dataset["root"] = args.root
    suite = {
        "name": "cell",
        "imports": list(args.imports),
        "datasets": {args.dataset: dataset},
        "methods": {args.method: {"method": args.method}},
        "budgets": [budget],
        "delta": "auto" if args.delta is None else args.delta,
        "seeds": [args.seed],
        "n_samples": args.n_samples,
        "metrics": {name.strip(): {} for name in args.metrics.split(",") if name.strip()},
    }
    return json.dumps(suite)


def _cell(args: argparse.Namespace) -> int:
    from isoeps.bench.runner import run_cell
    from isoeps.bench.session import runtime_overrides
    from isoeps.cli._common import check_device
    from isoeps.results import folders

    overrides = [
        *args.overrides,
        *args.set,
        *runtime_overrides(device=args.device, secure=args.secure or None, results=args.results),
    ]
    spec, cell, folder = _resolve_cell(args, overrides)
    check_device(spec.runtime.device)
    _check_rerun(folder, force=args.force)
    with folders.claim_run_dir(folder, command="isoeps cell"):  # no second writer meanwhile
        outcome = run_cell(cell, folder=folder, runtime=spec.runtime, overrides=overrides)
    _emit_outcome(args, cell, folder, outcome)
    return 0 if outcome.status == folders.FINISHED else 1


def _resolve_cell(args: argparse.Namespace, overrides: list[str]) -> tuple[Any, Any, Path]:
    """The suite spec, the one cell to run and its run folder, from either form."""
    from isoeps.bench import cells as cells_module
    from isoeps.bench.spec import load_suite, merge_config, validate
    from isoeps.errors import ConfigError
    from isoeps.results import folders

    if args.suite:
        if not args.cell_id:
            raise ConfigError("--suite needs --id CELL_ID")
        spec = load_suite(args.suite, overrides)
        cell = cells_module.find_cell(cells_module.expand(spec), args.cell_id)
        return spec, cell, folders.run_dir(Path(spec.runtime.results), cell.slug)
    if args.cell_id:
        raise ConfigError("--id needs --suite")
    text = adhoc_suite_text(args)
    spec = validate(merge_config(text, overrides, origin="isoeps cell"), origin="isoeps cell")
    expanded = cells_module.expand(spec)
    if len(expanded) != 1:
        raise ConfigError(f"the overrides expand to {len(expanded)} cells; a cell is one")
    return spec, expanded[0], Path(args.out)


def _check_rerun(folder: Path, *, force: bool) -> None:
    """Refuse a folder isoeps did not write, and a finished cell's folder without ``force``."""
    from isoeps.errors import ConfigError
    from isoeps.results import folders

    folders.check_own(folder)  # never clear a folder isoeps did not write
    status = folders.status_of(folder) if folders.is_run_dir(folder) else None
    if status and status.get("status") == folders.FINISHED and not force:
        raise ConfigError(
            f"{folder} holds a finished cell; pass --force to run it again "
            "(its results are replaced)"
        )


def _emit_outcome(args: argparse.Namespace, cell: Any, folder: Path, outcome: Any) -> None:
    """Print the cell's outcome and its re-accounted epsilons (JSON with ``--json``)."""
    import json

    from isoeps.cli._common import emit
    from isoeps.results import folders

    privacy_path = folder / folders.PRIVACY
    privacy = json.loads(privacy_path.read_text()) if privacy_path.is_file() else {}
    payload = {
        "cell_id": cell.cell_id,
        "status": outcome.status,
        "reason": outcome.reason,
        "run_dir": str(folder),
        "budget": cell.budget,
        "target_epsilon": privacy.get("target_epsilon", cell.epsilon),
        "delta": privacy.get("delta"),
        "accountant": privacy.get("accountant"),
        "epsilon_achieved": privacy.get("epsilon_achieved"),
        "epsilon_by_accountant": privacy.get("epsilon_by_accountant", {}),
        "wall_time_s": outcome.wall_time_s,
    }
    eps_text = ", ".join(
        f"{k}={v if isinstance(v, str) else f'{v:.4g}'}"
        for k, v in payload["epsilon_by_accountant"].items()
    )
    emit(
        args,
        payload,
        f"[{outcome.status}] {folder} (eps {cell.budget}; re-accounted: "
        f"{eps_text or 'n/a'})" + (f": {outcome.reason}" if outcome.reason else ""),
    )
