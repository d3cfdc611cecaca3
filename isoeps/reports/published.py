"""Published numbers beside isoeps's own: DPImageBench's table, from a data file, never re-run.

The rows live in ``published/dpimagebench-565f8d7.json`` (DPImageBench's README, section 7, at
commit 565f8d7), transcribed by a script from that README, not typed by hand. isoeps's rows
are the means ± the half-width of their 95% t-CI over seeds (n seeds in parentheses) of the
values that its ``dpimagebench-*`` metrics store; each table and figure labels the published rows "published by DPImageBench, not re-run here".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from isoeps.reports.figures import _colour, _plt, _save
from isoeps.reports.spec import ReportSpec
from isoeps.reports.tables import interval_text
from isoeps.results import stats

PUBLISHED_FILE = Path(__file__).with_name("published") / "dpimagebench-565f8d7.json"

#: Published metric -> (the isoeps value name of the same protocol step, scale to the
#: published unit). DPImageBench prints accuracy in percent; isoeps stores fractions.
PLACEMENT: dict[str, tuple[str, float]] = {
    "accuracy": ("dpib_acc_mean", 100.0),
    "fid": ("dpib_fid", 1.0),
    "is": ("dpib_is", 1.0),
    "precision": ("dpib_precision", 1.0),
    "recall": ("dpib_recall", 1.0),
}

#: isoeps method -> the published method it implements: its published rows (and variants such
#: as "DP-LDM (SD)") are placed right under its own. The same method, not the same models.
COUNTERPARTS: dict[str, str] = {"private-evolution": "PE", "dp-ldm": "DP-LDM"}

#: The columns of the placement table: (published metric, ε).
COLUMNS: tuple[tuple[str, float], ...] = (
    ("accuracy", 1.0),
    ("accuracy", 10.0),
    ("fid", 10.0),
    ("is", 10.0),
    ("precision", 10.0),
    ("recall", 10.0),
)


@dataclass(frozen=True)
class PublishedTable:
    """DPImageBench's published rows: ``rows`` of dicts with dataset, method, epsilon,
    metric and value; ``label``, ``source`` and ``commit`` say where they come from."""

    label: str
    source: str
    commit: str
    rows: tuple[dict[str, Any], ...]

    def datasets(self) -> set[str]:
        """The dataset sources (isoeps names) the table has rows for."""
        return {row["dataset"] for row in self.rows}

    def value(self, dataset: str, method: str, metric: str, epsilon: float) -> float | None:
        """One published number, or None where the table has none.

        Args:
            dataset: the dataset's name in the table.
            method: the method's name in the table.
            metric: the metric's name in the table.
            epsilon: the budget (compared with ``math.isclose``).

        Returns:
            The number, or None.
        """
        for row in self.rows:
            if (row["dataset"], row["method"], row["metric"]) == (dataset, method, metric) and (
                math.isclose(row["epsilon"], epsilon)
            ):
                return float(row["value"])
        return None

    def methods(self, dataset: str) -> list[str]:
        """The published methods of ``dataset``, in the table's order."""
        return list(dict.fromkeys(r["method"] for r in self.rows if r["dataset"] == dataset))


@lru_cache(maxsize=1)
def load_published(path: Path = PUBLISHED_FILE) -> PublishedTable:
    """DPImageBench's published table from its data file.

    Args:
        path: the JSON file (default: the shipped one).

    Returns:
        The table with its provenance.
    """
    document = json.loads(Path(path).read_text())
    return PublishedTable(
        label=document["label"],
        source=document["source"],
        commit=document["commit"],
        rows=tuple(document["rows"]),
    )


def _isoeps_cells(frame: Any, dataset_name: str) -> dict[tuple[str, str, str], tuple[float, ...]]:
    """(method, budget, published metric) -> values over seeds, on the published scale."""
    part = frame[frame["dataset_name"] == dataset_name]
    out: dict[tuple[str, str, str], tuple[float, ...]] = {}
    for metric, (name, scale) in PLACEMENT.items():
        rows = part[part["metric"] == name]
        for (method, budget), group in rows.groupby(["method", "budget"], sort=False):
            out[(method, budget, metric)] = tuple(float(v) * scale for v in group["value"])
    return out


def _mean_ci(values: tuple[float, ...] | None, decimals: int) -> str:
    if not values:
        return "–"
    return interval_text(stats.t_interval(values), decimals=decimals)


def _decimals(metric: str) -> int:
    return {"accuracy": 1, "fid": 1, "is": 2}.get(metric, 2)


def placement_markdown(frame: Any, dataset_name: str) -> str | None:
    """isoeps's rows (mean ± 95% t-CI half-width over seeds, n) above DPImageBench's published rows.

    Args:
        frame: the tidy frame (:func:`isoeps.results.load`).
        dataset_name: the dataset source, e.g. ``"fashion-mnist"``.

    Returns:
        A Markdown table, or None when the published table has no rows for this dataset or
        the frame has no DPImageBench-protocol value for it.
    """
    published = load_published()
    cells = _isoeps_cells(frame, dataset_name)
    if dataset_name not in published.datasets() or not cells:
        return None
    header = ["Method", "Source"] + [f"{m} ε={e:g}" for m, e in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    methods = list(dict.fromkeys(method for method, _, _ in cells))
    for method in methods:
        budgets = dict.fromkeys(budget for m, budget, _ in cells if m == method)
        for budget in ("inf", "public"):
            if budget in budgets:
                texts = [_mean_ci(cells.get((method, budget, m)), _decimals(m)) for m, _ in COLUMNS]
                note = "non-private reference" if budget == "inf" else "public data only"
                lines.append(f"| {method} | isoeps, {note} (every column) | {' | '.join(texts)} |")
        texts = [_mean_ci(cells.get((method, f"{e:g}", m)), _decimals(m)) for m, e in COLUMNS]
        lines.append(f"| **{method}** | isoeps, this run | {' | '.join(texts)} |")
        for name in _counterparts(published, dataset_name, method):
            note = f"{published.label}; the method isoeps's {method} implements"
            lines.append(_published_line(published, dataset_name, name, note))
    placed = {n for m in methods for n in _counterparts(published, dataset_name, m)}
    for name in published.methods(dataset_name):
        if name not in placed:
            lines.append(_published_line(published, dataset_name, name, published.label))
    return "\n".join(lines)


def _counterparts(published: PublishedTable, dataset_name: str, method: str) -> list[str]:
    """The published rows of the method ``method`` implements (its variants included)."""
    name = COUNTERPARTS.get(method)
    if name is None:
        return []
    return [m for m in published.methods(dataset_name) if m == name or m.startswith(f"{name} (")]


def _published_line(published: PublishedTable, dataset_name: str, method: str, note: str) -> str:
    texts = []
    for metric, epsilon in COLUMNS:
        number = published.value(dataset_name, method, metric, epsilon)
        texts.append("–" if number is None else f"{number:.{_decimals(metric)}f}")
    return f"| {method} | {note} | {' | '.join(texts)} |"


def accuracy_vs_epsilon(frame: Any, dataset_name: str, out: Path, spec: ReportSpec) -> list[Path]:
    """Accuracy against ε: isoeps's methods (mean and 95% t-CI over seeds) and DPImageBench's
    published points (grey, labelled). Returns the PNG and PDF paths (none without data).

    Args:
        frame: the tidy frame of a store.
        dataset_name: the dataset, as named in both the frame and the published table.
        out: the folder the figure is written to.
        spec: the report spec (method colours).

    Returns:
        See above.
    """
    published = load_published()
    cells = _isoeps_cells(frame, dataset_name)
    if dataset_name not in published.datasets() or not cells:
        return []
    plt = _plt()
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    _published_points(axis, published, dataset_name)
    methods = list(dict.fromkeys(method for method, _, _ in cells))
    for k, method in enumerate(methods):
        xs, means, half_widths = [], [], []
        for epsilon in (1.0, 10.0):
            values = cells.get((method, f"{epsilon:g}", "accuracy"))
            if values:
                interval = stats.t_interval(values)
                xs.append(epsilon)
                means.append(interval.mean)
                half_widths.append(interval.half_width or 0.0)  # one seed: no bar
        if xs:
            axis.errorbar(
                xs,
                means,
                yerr=half_widths,
                marker="s",
                capsize=3,
                lw=1.5,
                color=_colour(spec, method, k),
                label=f"{method} (isoeps)",
            )
    axis.set_xscale("log")
    axis.set_xticks([1, 10], ["1", "10"])
    axis.set_xlabel("ε")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title(f"{dataset_name}: accuracy of a classifier trained on samples")
    axis.legend(fontsize=7, loc="lower right")
    return _save(figure, out / "figures" / f"accuracy_vs_eps_published_{dataset_name}")


def _published_points(axis: Any, published: PublishedTable, dataset_name: str) -> None:
    """DPImageBench's accuracy at ε = 1 and 10 per method, grey, each line labelled."""
    for k, method in enumerate(published.methods(dataset_name)):
        points = [(e, published.value(dataset_name, method, "accuracy", e)) for e in (1.0, 10.0)]
        points = [(e, v) for e, v in points if v is not None]
        axis.plot(
            *zip(*points, strict=True),
            color="0.7",
            marker="o",
            markersize=3,
            lw=0.8,
            label=f"{published.label}" if k == 0 else None,
        )
        axis.annotate(
            method,
            points[-1],
            fontsize=6,
            color="0.45",
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
        )
