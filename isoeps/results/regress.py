"""Regression gates: compare a store with a committed baseline, metric by metric.

A baseline holds, for each gated row (KID and attribute metrics by default; small-n FID is
mostly bias), the value at one fixed seed and n, its own CI where its metric records one
(``ci``: a bootstrap over samples, KID's subsets, a binomial interval), and a tolerance.

A regression is a change outside the baseline's CI: with ``by="ci"`` (the default) an entry
that has a CI gates on it, and one without (a baseline written before values had CIs) on its
tolerance. Default tolerances are 3 standard deviations of the metric over at least
:data:`MIN_SEEDS` seeds, measured when the baseline is written: with 5 seeds that is the 95%
t prediction interval for one new seed (``t_{0.975,4} · √(1 + 1/5) = 3.04`` stds), the same
level as the CIs. ``by="tolerance"`` gates on the recorded tolerances only, and
``--tolerance metric=abs:X|rel:X`` overrides either for a metric. Each entry also records the
method's and the metric's version: a value measured by another version is ``stale`` (the
baseline needs re-recording), not a regression or an improvement.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isoeps.results.compare import value_ci
from isoeps.results.folders import write_json_atomic

DEFAULT_GATES: tuple[str, ...] = ("kid", "attr")
MIN_SEEDS = 5
SPREAD_FACTOR = 3.0
KEY = ("dataset", "method", "budget", "n_samples", "metric")
#: Columns whose change makes a baseline entry stale rather than comparable.
VERSIONS = ("method_version", "metric_version")
FAILING = ("regressed", "missing", "stale")
#: What an entry gates on: its CI where it has one, else its tolerance; or its tolerance only.
GATE_BY = ("ci", "tolerance")


@dataclass(frozen=True)
class Tolerance:
    kind: str  # "abs" or "rel"
    value: float

    def allowed(self, reference: float) -> float:
        return self.value if self.kind == "abs" else self.value * abs(reference)

    @classmethod
    def parse(cls, text: str) -> tuple[str, Tolerance]:
        """``metric=abs:0.01`` or ``metric=rel:0.1`` (a bare number means abs)."""
        metric, sep, spec = text.partition("=")
        kind, colon, number = spec.partition(":")
        if not colon:
            kind, number = "abs", spec
        try:
            value = float(number)
        except ValueError:
            value = math.nan
        if not sep or not metric or kind not in ("abs", "rel") or not value >= 0:
            raise ValueError(
                f"--tolerance {text!r}: expected metric=abs:X or metric=rel:X with X >= 0"
            )
        return metric, cls(kind, value)


def gated(frame: Any, gates: tuple[str, ...]) -> Any:
    """The rows of ``frame`` whose metric or metric group is in ``gates``.

    Args:
        frame: the tidy frame of a store.
        gates: metric names or metric groups.

    Returns:
        The selected rows.
    """
    mask = frame["metric_group"].isin(gates) | frame["metric"].isin(gates)
    return frame[mask]


def write_baseline(
    frame: Any,
    path: str | Path,
    *,
    gates: tuple[str, ...] = DEFAULT_GATES,
    seed: int | None = None,
    tolerances: dict[str, Tolerance] | None = None,
    min_seeds: int = MIN_SEEDS,
) -> dict[str, Any]:
    """Write the baseline of ``frame``'s gated rows at ``seed`` (default: the lowest).

    Each entry keeps the value's own CI when it has one. A metric's tolerance is the given
    one, else a multiple of its standard deviation over seeds; an entry with a CI needs no
    tolerance (it has one when the store has enough seeds).

    Args:
        frame: the tidy frame of a store.
        path: the baseline JSON file to write.
        gates: the metric names or groups baselined.
        seed: the seed whose values are recorded; None for the lowest present.
        tolerances: ``{metric: Tolerance}`` that override the seed-spread default.
        min_seeds: the fewest seeds a metric without a given tolerance needs.

    Returns:
        The baseline written: ``created``, ``gates``, ``seed`` and ``entries``.

    Raises:
        ValueError: no gated rows, a key with no run at ``seed``, or an entry with neither a
            CI nor enough seeds for the default tolerance.
    """
    rows = gated(frame, gates)
    if rows.empty:
        raise ValueError(f"no gated metrics ({', '.join(gates)}) in the store to baseline")
    seed = int(rows["seed"].min()) if seed is None else seed
    entries = [
        _entry(dict(zip(KEY, key)), group, seed, tolerances or {}, min_seeds)
        for key, group in rows.groupby(list(KEY), sort=True)
    ]
    baseline = {
        "created": time.strftime("%Y-%m-%d"),
        "gates": list(gates),
        "seed": seed,
        "entries": entries,
    }
    write_json_atomic(Path(path), baseline)
    return baseline


def _entry(
    record: dict[str, Any],
    group: Any,
    seed: int,
    tolerances: dict[str, Tolerance],
    min_seeds: int,
) -> dict[str, Any]:
    """One baseline entry: the value at ``seed``, its CI if any, its tolerance if any."""
    at_seed = group[group["seed"] == seed]
    if at_seed.empty:
        raise ValueError(f"{_label(record)}: no run at seed {seed}")
    ci = value_ci(at_seed.head(1))
    tolerance = _tolerance(record, group, tolerances, min_seeds, required=ci is None)
    entry = {
        **{k: (int(v) if k == "n_samples" else str(v)) for k, v in record.items()},
        "seed": seed,
        "value": float(at_seed["value"].iloc[0]),
        "higher_is_better": bool(at_seed["higher_is_better"].iloc[0]),
        **{k: str(at_seed[k].iloc[0]) for k in VERSIONS if k in at_seed},
    }
    if ci is not None:
        entry["ci"] = {"low": ci[0], "high": ci[1]}
    if tolerance is not None:
        entry["tolerance"] = tolerance
    return entry


def _tolerance(
    record: dict[str, Any],
    group: Any,
    tolerances: dict[str, Tolerance],
    min_seeds: int,
    *,
    required: bool,
) -> dict[str, Any] | None:
    """The entry's tolerance: given, or from the spread over seeds (None when there are too
    few seeds and the entry has a CI to gate on instead)."""
    metric = record["metric"]
    if metric in tolerances:
        tolerance, source = tolerances[metric], "given"
    else:
        seeds = group["seed"].nunique()
        if seeds < min_seeds:
            if not required:
                return None
            raise ValueError(
                f"{_label(record)}: {seeds} seed(s) in the store and no per-value CI; the "
                f"default tolerance needs >= {min_seeds} (run the suite with "
                f"seeds=[0,...,{min_seeds - 1}]) or pass --tolerance {metric}=abs:X"
            )
        spread = float(group["value"].std(ddof=1))
        tolerance = Tolerance("abs", SPREAD_FACTOR * spread)
        source = f"{SPREAD_FACTOR:g} x std over {seeds} seeds"
    return {"kind": tolerance.kind, "value": tolerance.value, "source": source}


def _label(record: dict[str, Any]) -> str:
    return "/".join(str(record[k]) for k in ("dataset", "method", "budget", "metric"))


def compare(
    frame: Any,
    baseline: dict[str, Any],
    *,
    tolerances: dict[str, Tolerance] | None = None,
    by: str = "ci",
) -> list[dict[str, Any]]:
    """One row per baseline entry: current value, delta, the gate and its bounds, and a
    verdict (``ok``, ``improved``, ``regressed``, ``missing``, or ``stale`` when the method
    or the metric changed version since the baseline was written).

    Args:
        frame: the tidy frame of the current store.
        baseline: what :func:`write_baseline` wrote.
        tolerances: ``{metric: Tolerance}`` that override the baseline's CI and tolerance.
        by: ``ci`` (an entry's CI where it has one, else its tolerance) or ``tolerance``.

    Returns:
        The rows, in baseline order; ``allowed`` is how far the value may get worse.

    Raises:
        ValueError: ``by`` is neither, or an entry has nothing to gate on.
    """
    if by not in GATE_BY:
        raise ValueError(f"--by must be one of {', '.join(GATE_BY)}, got {by!r}")
    out = []
    for entry in baseline["entries"]:
        sel = frame
        for k in KEY:
            sel = sel[sel[k].astype(str) == str(entry[k])]
        sel = sel[sel["seed"] == entry["seed"]]
        gate, low, high = _bounds(entry, (tolerances or {}).get(entry["metric"]), by)
        worse_bound = low if entry["higher_is_better"] else high
        row = {
            "key": _label(entry),
            "seed": entry["seed"],
            "n": entry["n_samples"],
            "baseline": entry["value"],
            "gate": gate,
            "low": low,
            "high": high,
            "allowed": abs(worse_bound - entry["value"]),
            "higher_is_better": entry["higher_is_better"],
        }
        if sel.empty:
            out.append({**row, "current": None, "delta": None, "verdict": "missing"})
            continue
        current = float(sel["value"].iloc[0])
        delta = current - entry["value"]
        if _changed_versions(entry, sel):
            verdict = "stale"
        else:
            verdict = _verdict(current, low, high, higher_is_better=entry["higher_is_better"])
        out.append({**row, "current": current, "delta": delta, "verdict": verdict})
    return out


def _bounds(entry: dict[str, Any], given: Tolerance | None, by: str) -> tuple[str, float, float]:
    """(gate, low, high): the range of values that is not a change."""
    value = entry["value"]
    if given is None and by == "ci" and "ci" in entry:
        return "ci", entry["ci"]["low"], entry["ci"]["high"]
    if given is None and "tolerance" not in entry:
        raise ValueError(
            f"{_label(entry)}: the baseline records a CI and no tolerance; gate with --by ci "
            f"or pass --tolerance {entry['metric']}=abs:X"
        )
    tolerance = given or Tolerance(entry["tolerance"]["kind"], entry["tolerance"]["value"])
    allowed = tolerance.allowed(value)
    return ("given" if given else "tolerance"), value - allowed, value + allowed


def _verdict(current: float, low: float, high: float, *, higher_is_better: bool) -> str:
    """``regressed`` outside the bounds the worse way (or NaN), ``improved`` the better way."""
    if math.isnan(current):
        return "regressed"
    if current < low:
        return "regressed" if higher_is_better else "improved"
    if current > high:
        return "improved" if higher_is_better else "regressed"
    return "ok"


def _changed_versions(entry: dict[str, Any], current: Any) -> list[str]:
    """Versions that differ; a row indexed before versions were stored (null) is not stale."""
    changed = []
    for k in VERSIONS:
        value = current[k].iloc[0] if k in current else None
        if k in entry and isinstance(value, str) and value != entry[k]:
            changed.append(f"{k} {entry[k]} -> {value}")
    return changed


def format_comparison(rows: list[dict[str, Any]]) -> str:
    """The text ``isoeps regress`` prints: a line per entry, then the counts and notes.

    Args:
        rows: what :func:`compare` returned.

    Returns:
        The text.
    """

    def num(value: Any) -> str:
        return "-" if value is None else f"{value:.5g}"

    width = max([len(r["key"]) for r in rows] + [6])
    lines = [
        (
            f"{'metric':<{width}}  {'seed':>4}  {'baseline':>10}  {'current':>10}  "
            f"{'delta':>10}  {'allowed':>10}  {'gate':<9}  verdict"
        )
    ]
    for r in rows:
        arrow = "↑" if r["higher_is_better"] else "↓"
        lines.append(
            f"{r['key']:<{width}}  {r['seed']:>4}  {num(r['baseline']):>10}  "
            f"{num(r['current']):>10}  {num(r['delta']):>10}  {num(r['allowed']):>10}  "
            f"{r['gate']:<9}  {r['verdict']} ({arrow} better)"
        )
    bad = [r for r in rows if r["verdict"] in FAILING]
    lines.append(f"{len(rows)} gated value(s): {len(bad)} regressed, missing or stale")
    lines.append(
        "gate: ci = outside the baseline value's own CI [low, high]; tolerance = the "
        "baseline's recorded tolerance (no CI recorded, or --by tolerance); given = --tolerance"
    )
    if any(r["verdict"] == "stale" for r in rows):
        lines.append(
            "stale: the method or metric changed version since the baseline was "
            "written; re-record it from >= 5 seeds (isoeps regress --write-baseline)"
        )
    return "\n".join(lines)


def load_baseline(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--baseline: no such file {path}")
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or "entries" not in data:
        raise ValueError(f"{path}: not an isoeps baseline (no 'entries')")
    return data
