"""``--dry-run``: each cell's status, its DP plan (sigma, q, T, achieved epsilon, DP steps)
when the method exposes ``plan(budget, num_records)``, and a time estimate from earlier cells."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from isoeps.bench.cell_flow import build_method
from isoeps.bench.cells import Cell
from isoeps.bench.runner import plan_status
from isoeps.results import folders


def _durations(store: Path) -> dict[tuple[str, str, str], list[float]]:
    """Wall times of finished cells by (suite, method label, budget mode): one store can hold
    several suites, whose cells of the same method differ in size (smoke vs quick)."""
    out: dict[tuple[str, str, str], list[float]] = {}
    for folder in folders.iter_run_dirs(store):
        status = folders.status_of(folder)
        if not status or status.get("status") != folders.FINISHED:
            continue
        cell = folders.read_json(folder / folders.CELL)
        key = (cell.get("suite", ""), cell["method_label"], _mode(cell["budget"]))
        out.setdefault(key, []).append(float(status.get("wall_time_s") or 0))
    return out


def _mode(budget: str) -> str:
    return budget if budget in ("inf", "public") else "private"


def _num_private(cell: Cell, known: dict[str, int]) -> int:
    """N from the spec, else from loading the private split once per dataset label."""
    if cell.dataset.n.get("private"):
        return int(cell.dataset.n["private"])
    if cell.dataset_label not in known:
        from isoeps.datasets import load_split

        spec = cell.dataset
        known[cell.dataset_label] = len(
            load_split(
                spec.name,
                "private",
                resolution=spec.resolution,
                seed=spec.data_seed,
                root=spec.root,
                options=spec.options,
            )
        )
    return known[cell.dataset_label]


def _method_plan(cell: Cell, known: dict[str, int]) -> dict[str, Any] | None:
    from isoeps.accountants import PrivacyBudget, cell_delta
    from isoeps.methods.base import MethodContext

    num = _num_private(cell, known)
    budget = PrivacyBudget.parse(cell.budget, delta=cell_delta(cell.delta_rule, num))
    method = build_method(cell, ctx=MethodContext(seed=cell.seed))
    plan = method.plan(budget, num)
    if plan is None:
        return None
    return plan if isinstance(plan, dict) else getattr(plan, "__dict__", {"plan": str(plan)})


def dry_run(cells: list[Cell], store: Path) -> list[dict[str, Any]]:
    """What ``--dry-run`` prints: one row per cell, with its status, plan and time estimate.

    A plan that cannot be made is shown as its error.

    Args:
        cells: the cells.
        store: the results store (for statuses and past durations).

    Returns:
        One dict per cell; ``estimate_s`` is the median past wall time of like cells, or None.
    """
    statuses = plan_status(cells, store)
    durations = _durations(store)
    rows = []
    known: dict[str, int] = {}
    for cell in cells:
        times = durations.get((cell.suite, cell.method_label, _mode(cell.budget)))
        try:
            plan = _method_plan(cell, known)
        except Exception as exc:  # noqa: BLE001 (a plan that cannot be made is itself worth printing)
            plan = {"error": f"{type(exc).__name__}: {exc}"}
        rows.append(
            {
                "cell_id": cell.cell_id,
                "dataset": cell.dataset_label,
                "method": cell.method_label,
                "budget": cell.budget,
                "seed": cell.seed,
                "status": statuses[cell.cell_id],
                "num_private": known.get(cell.dataset_label, cell.dataset.n.get("private")),
                "plan": plan,
                "estimate_s": statistics.median(times) if times else None,
            }
        )
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    lines = [
        (
            f"{'cell':<13}{'dataset':<14}{'method':<24}{'eps':<8}{'seed':<5}{'status':<11}"
            f"{'estimate':<10}plan"
        )
    ]
    for row in rows:
        estimate = f"{row['estimate_s']:.0f}s" if row["estimate_s"] is not None else "?"
        plan = row["plan"]
        plan_text = (
            "(method has no plan)"
            if plan is None
            else " ".join(f"{k}={_fmt(v)}" for k, v in plan.items())
        )
        lines.append(
            f"{row['cell_id']:<13}{row['dataset']:<14}{row['method']:<24}"
            f"{row['budget']:<8}{row['seed']:<5}{row['status']:<11}{estimate:<10}"
            f"{plan_text}"
        )
    todo = [r for r in rows if r["status"] not in ("finished",)]
    known = [r["estimate_s"] for r in todo if r["estimate_s"] is not None]
    lines.append(
        f"{len(rows)} cells, {len(todo)} to run"
        + (
            f"; about {sum(known) / 60:.1f} min for the {len(known)} with estimates"
            if known
            else ""
        )
    )
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
