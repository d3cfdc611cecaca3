"""The tables' "audited ε (lower bound)" column, from a store's audited runs.

An audited run is a separate run of a row's configuration with canaries in its private split
(:mod:`isoeps.bench.audit`); none of its metrics is ever shown. Its one bound is shown beside
the row of the configuration it audits. Each seed's bound holds at confidence 1 - beta alone,
so the column shows the largest over the audited seeds, with their count: by the union bound
that largest value is a lower bound at confidence 1 - n beta.
"""

from __future__ import annotations

from typing import Any

#: The column's header.
HEADER = "audited ε (lower bound)"


def row_key(method: str, budget: str, adjacency: Any) -> tuple[str, str, str | None]:
    """How a table row and an audited run are matched (a missing adjacency reads as None)."""
    return method, budget, adjacency if isinstance(adjacency, str) else None


def audit_bounds(audits: Any, *, dataset: str, cell_ids: set[str]) -> dict[tuple, dict]:
    """The audited bounds of one dataset's rows.

    Args:
        audits: the store's audits (:func:`isoeps.results.audits.load_audits`), or None.
        dataset: the table's dataset label.
        cell_ids: the cells the report shows: only their configurations' audits are used.

    Returns:
        ``{row_key: {kind: (largest epsilon_lower, seeds, beta)}}``.
    """
    if audits is None or audits.empty:
        return {}
    part = audits[(audits["dataset"] == dataset) & audits["cell_id"].isin(cell_ids)]
    out: dict[tuple, dict] = {}
    for (method, budget, kind), group in part.groupby(["method", "budget", "kind"], sort=False):
        adjacency = group["adjacency"].iloc[0]
        bounds = out.setdefault(row_key(method, budget, adjacency), {})
        bounds[kind] = (float(group["epsilon_lower"].max()), len(group), float(group["beta"].max()))
    return out


def bound_text(bounds: dict[str, tuple[float, int, float]] | None, *, decimals: int = 2) -> str:
    """A row's entry: ``0.31 (max of 3)``; the kind is named when a row has both."""
    if not bounds:
        return "–"
    parts = []
    for kind, (value, n, _) in sorted(bounds.items()):
        text = f"{value:.{decimals}f} ({'max of ' if n > 1 else 'n='}{n})"
        parts.append(f"{kind} {text}" if len(bounds) > 1 else text)
    return "; ".join(parts)


def caption_note(bounds: dict[tuple, dict]) -> str:
    """The caption's sentence on the column, or ``""`` when no row was audited."""
    if not bounds:
        return ""
    kinds = sorted({kind for row in bounds.values() for kind in row})
    betas = sorted({beta for row in bounds.values() for _, _, beta in row.values()})
    return (
        f"{HEADER}: the one-run audit (Steinke, Nasr and Jagielski 2023; {', '.join(kinds)}) "
        "of a separate run of the row's configuration with canaries, never the run whose "
        f"metrics the row shows; each seed's bound holds at confidence 1 − β (β = "
        f"{', '.join(f'{b:g}' for b in betas)}), the largest of n seeds at 1 − nβ."
    )
