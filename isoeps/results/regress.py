"""Regression gates: compare a store with a committed baseline, metric by metric.

A baseline holds, for each gated row (KID and attribute metrics by default; small-n FID is
mostly bias), the value at one fixed seed and n, and a tolerance. Default tolerances are
3 standard deviations of the metric over at least :data:`MIN_SEEDS` seeds, measured when
the baseline is written; ``--tolerance metric=abs:X|rel:X`` overrides them. Each entry also
records the method's and the metric's version: a value measured by another version is
``stale`` (the baseline needs re-recording), not a regression or an improvement.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isoeps.results.folders import write_json_atomic

DEFAULT_GATES: tuple[str, ...] = ("kid", "attr")
MIN_SEEDS = 5
SPREAD_FACTOR = 3.0
KEY = ("dataset", "method", "budget", "n_samples", "metric")
#: Columns whose change makes a baseline entry stale rather than comparable.
VERSIONS = ("method_version", "metric_version")
FAILING = ("regressed", "missing", "stale")


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

    A metric's tolerance is the given one, else a multiple of its standard deviation over
    seeds.

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
        ValueError: no gated rows, a key with no run at ``seed``, or too few seeds for the
            default tolerance.
    """
    tolerances = tolerances or {}
    rows = gated(frame, gates)
    if rows.empty:
        raise ValueError(f"no gated metrics ({', '.join(gates)}) in the store to baseline")
    seed = int(rows["seed"].min()) if seed is None else seed
    entries = []
    for key, group in rows.groupby(list(KEY), sort=True):
        record = dict(zip(KEY, key))
        at_seed = group[group["seed"] == seed]
        if at_seed.empty:
            raise ValueError(f"{_label(record)}: no run at seed {seed}")
        metric = record["metric"]
        if metric in tolerances:
            tolerance = tolerances[metric]
            source = "given"
        else:
            seeds = group["seed"].nunique()
            if seeds < min_seeds:
                raise ValueError(
                    f"{_label(record)}: {seeds} seed(s) in the store; the default tolerance "
                    f"needs >= {min_seeds} (run the suite with seeds=[0,...,{min_seeds - 1}]) "
                    f"or pass --tolerance {metric}=abs:X"
                )
            spread = float(group["value"].std(ddof=1))
            tolerance = Tolerance("abs", SPREAD_FACTOR * spread)
            source = f"{SPREAD_FACTOR:g} x std over {seeds} seeds"
        entries.append(
            {
                **{k: (int(v) if k == "n_samples" else str(v)) for k, v in record.items()},
                "seed": seed,
                "value": float(at_seed["value"].iloc[0]),
                "higher_is_better": bool(at_seed["higher_is_better"].iloc[0]),
                **{k: str(at_seed[k].iloc[0]) for k in VERSIONS if k in at_seed},
                "tolerance": {"kind": tolerance.kind, "value": tolerance.value, "source": source},
            }
        )
    baseline = {
        "created": time.strftime("%Y-%m-%d"),
        "gates": list(gates),
        "seed": seed,
        "entries": entries,
    }
    write_json_atomic(Path(path), baseline)
    return baseline


def _label(record: dict[str, Any]) -> str:
    return "/".join(str(record[k]) for k in ("dataset", "method", "budget", "metric"))


def compare(
    frame: Any, baseline: dict[str, Any], *, tolerances: dict[str, Tolerance] | None = None
) -> list[dict[str, Any]]:
    """One row per baseline entry: current value, delta, allowed move and verdict
    (``ok``, ``improved``, ``regressed``, ``missing``, or ``stale`` when the method or the
    metric changed version since the baseline was written).

    Args:
        frame: the tidy frame of the current store.
        baseline: what :func:`write_baseline` wrote.
        tolerances: ``{metric: Tolerance}`` that override the baseline's.

    Returns:
        The rows, in baseline order.
    """
    tolerances = tolerances or {}
    out = []
    for entry in baseline["entries"]:
        sel = frame
        for k in KEY:
            sel = sel[sel[k].astype(str) == str(entry[k])]
        sel = sel[sel["seed"] == entry["seed"]]
        tolerance = tolerances.get(entry["metric"]) or Tolerance(
            entry["tolerance"]["kind"], entry["tolerance"]["value"]
        )
        allowed = tolerance.allowed(entry["value"])
        row = {
            "key": _label(entry),
            "seed": entry["seed"],
            "n": entry["n_samples"],
            "baseline": entry["value"],
            "allowed": allowed,
            "higher_is_better": entry["higher_is_better"],
        }
        if sel.empty:
            out.append({**row, "current": None, "delta": None, "verdict": "missing"})
            continue
        current = float(sel["value"].iloc[0])
        delta = current - entry["value"]
        if _changed_versions(entry, sel):
            out.append({**row, "current": current, "delta": delta, "verdict": "stale"})
            continue
        worse = -delta if entry["higher_is_better"] else delta
        if math.isnan(current) or worse > allowed:
            verdict = "regressed"
        elif -worse > allowed:
            verdict = "improved"
        else:
            verdict = "ok"
        out.append({**row, "current": current, "delta": delta, "verdict": verdict})
    return out


def _changed_versions(entry: dict[str, Any], current: Any) -> list[str]:
    """Versions that differ; a row indexed before versions were stored (null) is not stale."""
    changed = []
    for k in VERSIONS:
        value = current[k].iloc[0] if k in current else None
        if k in entry and isinstance(value, str) and value != entry[k]:
            changed.append(f"{k} {entry[k]} -> {value}")
    return changed


def format_comparison(rows: list[dict[str, Any]]) -> str:
    def num(value: Any) -> str:
        return "-" if value is None else f"{value:.5g}"

    width = max([len(r["key"]) for r in rows] + [6])
    lines = [
        (
            f"{'metric':<{width}}  {'seed':>4}  {'baseline':>10}  {'current':>10}  "
            f"{'delta':>10}  {'allowed':>10}  verdict"
        )
    ]
    for r in rows:
        arrow = "↑" if r["higher_is_better"] else "↓"
        lines.append(
            f"{r['key']:<{width}}  {r['seed']:>4}  {num(r['baseline']):>10}  "
            f"{num(r['current']):>10}  {num(r['delta']):>10}  {num(r['allowed']):>10}  "
            f"{r['verdict']} ({arrow} better)"
        )
    bad = [r for r in rows if r["verdict"] in FAILING]
    lines.append(f"{len(rows)} gated value(s): {len(bad)} regressed, missing or stale")
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
