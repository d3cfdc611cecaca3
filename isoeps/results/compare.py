"""Two methods of a store compared at equal ε, seed by seed: what ``isoeps compare`` prints.

Rows are paired when they share the dataset, the budget, the adjacency, the sample count n and
the seed (the seed fixes the data order and every other stream of a cell), so each pair differs
only by the method. The statistics are :mod:`isoeps.results.stats`'s; with more than one ε shown,
the verdicts use Holm-adjusted p-values across them.
"""

from __future__ import annotations

import json
import math
from typing import Any

from isoeps.results import stats

#: What a pair must share besides the seed.
PAIR_KEY = ("dataset", "budget", "adjacency", "n_samples")
REFERENCE_BUDGETS = ("inf", "public")


def seed_values(rows: Any) -> dict[int, float]:
    """Seed -> value of one (dataset, method, budget, adjacency, metric) group's finite rows.

    Args:
        rows: the group's rows of the tidy frame.

    Returns:
        The mapping (NaN values are left out).
    """
    return {
        int(seed): float(value)
        for seed, value in zip(rows["seed"], rows["value"])
        if value is not None and not math.isnan(float(value))
    }


def value_ci(rows: Any) -> tuple[float, float] | None:
    """The per-value CI of a group that holds one finite row, when its metric recorded one.

    Args:
        rows: the group's rows of the tidy frame.

    Returns:
        ``(ci_low, ci_high)``, or None (several rows, or no CI recorded).
    """
    if len(rows) != 1 or "ci_low" not in rows:
        return None
    low, high = rows["ci_low"].iloc[0], rows["ci_high"].iloc[0]
    if low is None or high is None or math.isnan(float(low)) or math.isnan(float(high)):
        return None
    return float(low), float(high)


def ci_methods(rows: Any) -> list[str]:
    """The distinct per-value CI methods that ``rows``' details name (``details["ci"]``).

    Args:
        rows: rows of the tidy frame.

    Returns:
        Each method with its resampling count and seed where given, sorted.
    """
    found = set()
    for text in rows["details"].dropna() if "details" in rows else []:
        ci = json.loads(text or "{}").get("ci")
        if isinstance(ci, dict) and ci.get("method"):
            parts = [str(ci["method"])]
            if ci.get("resampled"):
                parts.append(f"resampling {ci['resampled']}")
            if ci.get("resamples"):
                parts.append(f"{ci['resamples']} resamples, seed {ci.get('seed')}")
            found.add(", ".join(parts))
    return sorted(found)


def budget_matches(budget: str, epsilon: str) -> bool:
    """Whether a row's ``budget`` is the ε the user named (``1`` matches ``1.0``)."""
    if budget in REFERENCE_BUDGETS or epsilon in REFERENCE_BUDGETS:
        return budget == epsilon
    try:
        return float(budget) == float(epsilon)
    except ValueError:
        return False


def _check_present(frame: Any, *, a: str, b: str, metric: str) -> Any:
    """``frame``'s rows of ``metric`` for ``a`` and ``b``; ValueError naming what is missing."""
    methods = sorted(set(frame["method"]))
    for method in (a, b):
        if method not in methods:
            raise ValueError(
                f"no method {method!r} in the store (its methods: {', '.join(methods) or 'none'})"
            )
    for method in (a, b):
        mine = frame[frame["method"] == method]
        if metric not in set(mine["metric"]):
            have = ", ".join(sorted(set(mine["metric"])))
            raise ValueError(f"no metric {metric!r} for method {method!r} (its metrics: {have})")
    rows = frame[(frame["metric"] == metric) & frame["method"].isin([a, b])]
    return rows.assign(adjacency=rows["adjacency"].fillna("").astype(str))


def compare_methods(
    frame: Any, *, a: str, b: str, metric: str, epsilon: str | None = None
) -> list[dict[str, Any]]:
    """A − B for ``metric`` at every ε both methods have (or only at ``epsilon``).

    Args:
        frame: the tidy frame of a store.
        a: the first method label.
        b: the second method label.
        metric: the metric name.
        epsilon: a budget (``1``, ``inf``, ``public``) to compare at; None for every shared one.

    Returns:
        One dict per (dataset, budget, adjacency, n): the means, the comparison's fields
        (``diff``, ``low``, ``high``, ``p_value``, ``p_holm``, ``n``, ``test``,
        ``permutation_p``), a ``verdict`` and, for an unresolved difference, a ``note``.

    Raises:
        ValueError: a method or the metric is not in the store, or no shared ε (at ``epsilon``).
    """
    rows = _check_present(frame, a=a, b=b, metric=metric)
    out = []
    for key, group in rows.groupby(list(PAIR_KEY), sort=False):
        if epsilon is not None and not budget_matches(str(key[1]), epsilon):
            continue
        mine, theirs = group[group["method"] == a], group[group["method"] == b]
        if mine.empty or theirs.empty:
            continue
        result = stats.compare_paired(
            seed_values(mine), seed_values(theirs), a_ci=value_ci(mine), b_ci=value_ci(theirs)
        )
        out.append(
            {
                **dict(zip(PAIR_KEY, (str(key[0]), str(key[1]), key[2], int(key[3])))),
                "metric": metric,
                "higher_is_better": bool(group["higher_is_better"].iloc[0]),
                "a_mean": float(mine["value"].mean()),
                "b_mean": float(theirs["value"].mean()),
                "comparison": result,
            }
        )
    if not out:
        raise ValueError(_no_shared_epsilon(rows, a=a, b=b, metric=metric, epsilon=epsilon))
    return _with_verdicts(sorted(out, key=_order), a=a, b=b)


def _order(row: dict[str, Any]) -> tuple[str, int, float, str]:
    budget = row["budget"]
    rank = {"public": 0, "inf": 2}.get(budget, 1)
    return (row["dataset"], rank, 0.0 if rank != 1 else float(budget), row["adjacency"])


def _no_shared_epsilon(rows: Any, *, a: str, b: str, metric: str, epsilon: str | None) -> str:
    shared = sorted(
        set(rows[rows["method"] == a]["budget"]) & set(rows[rows["method"] == b]["budget"]),
        key=lambda budget: _order({"dataset": "", "budget": budget, "adjacency": ""}),
    )
    where = f" at ε={epsilon}" if epsilon is not None else ""
    return (
        f"no {metric!r} rows of both {a!r} and {b!r}{where} at the same dataset, adjacency and "
        f"n (ε both have: {', '.join(shared) or 'none'})"
    )


def _with_verdicts(rows: list[dict[str, Any]], *, a: str, b: str) -> list[dict[str, Any]]:
    """Each row with its comparison's fields, Holm-adjusted p across the rows, a verdict and,
    when the CI is wider than the difference, the note on what would resolve it."""
    results = [row.pop("comparison") for row in rows]
    adjusted = iter(stats.holm([r.p_value for r in results if r is not None]))
    tested = sum(r is not None for r in results)
    out = []
    for row, result in zip(rows, results):
        if result is None:
            out.append({**row, "n": 1, "test": None, "verdict": "n=1, no CI: no test possible"})
            continue
        p_holm = next(adjusted)
        higher = row["higher_is_better"]
        if stats.better(result, higher_is_better=higher, p_value=p_holm):
            verdict = f"{a} better"
        elif _flipped(result, higher, p_holm):
            verdict = f"{b} better"
        elif result.resolved:
            verdict = f"not significant after Holm over {tested} ε"
        else:
            verdict = "no ordering shown"
        out.append(
            {
                **row,
                "diff": result.diff,
                "low": result.low,
                "high": result.high,
                "level": result.level,
                "p_value": result.p_value,
                "p_holm": p_holm,
                "n": result.n,
                "test": result.test,
                "permutation_p": result.permutation_p,
                "verdict": verdict,
                "note": stats.resolution_hint(result),
            }
        )
    return out


def _flipped(result: stats.Comparison, higher_is_better: bool, p_value: float) -> bool:
    """Whether B is better than A at the level (A − B points the worse way)."""
    return stats.better(result, higher_is_better=not higher_is_better, p_value=p_value)


def format_comparisons(rows: list[dict[str, Any]], *, a: str, b: str) -> str:
    """The text ``isoeps compare`` prints: a line per ε, then the notes.

    Args:
        rows: what :func:`compare_methods` returned.
        a: the first method label.
        b: the second.

    Returns:
        The text.
    """
    first = rows[0]
    direction = "higher" if first["higher_is_better"] else "lower"
    lines = [
        f"{first['metric']} ({direction} is better): {a} − {b}, paired seed by seed",
        (
            f"{'dataset':<12} {'ε':>7} {'n':>3} {'A − B':>10}  {'95% CI':<23} {'p':>7} "
            f"{'p (Holm)':>8}  test / verdict"
        ),
    ]
    notes = []
    for row in rows:
        label = f"{row['dataset']:<12} {row['budget'] + _adjacency(row):>7} {row['n']:>3}"
        if row["test"] is None:
            lines.append(f"{label} {'–':>10}  {'–':<23} {'–':>7} {'–':>8}  {row['verdict']}")
            continue
        interval = f"[{row['low']:+.4g}, {row['high']:+.4g}]"
        lines.append(
            f"{label} {row['diff']:>+10.4g}  {interval:<23} {row['p_value']:>7.3g} "
            f"{row['p_holm']:>8.3g}  {row['test']}: {row['verdict']}"
        )
        if row["permutation_p"] is not None:
            notes.append(
                f"ε={row['budget']}: exact sign-flip permutation p = {row['permutation_p']:.3g} "
                f"(no normality assumed; it cannot fall below {2 / 2 ** row['n']:.3g} with "
                f"{row['n']} seeds)"
            )
        if row["note"]:
            notes.append(f"ε={row['budget']}: {row['note']}")
    if any(row["adjacency"] == "replace_one" for row in rows):
        notes.append("‡ replace-one adjacency (its ε is not comparable with add/remove ε)")
    return "\n".join(lines + notes)


def _adjacency(row: dict[str, Any]) -> str:
    return "‡" if row["adjacency"] == "replace_one" else ""
