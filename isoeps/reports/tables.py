"""Tables: the mean over seeds with its 95% t-CI, per dataset, method and budget, as Markdown,
LaTeX and CSV.

Rows are grouped by method: each method's ``public`` row, its private budgets (ascending
epsilon), then its ``inf`` row, so that a method stands beside its own family's floor and
ceiling. A cell reads ``mean ± half-width (n)``; with one seed, the value and its own CI where
its metric records one, else ``(n=1, no CI)``.

Among the rows with the same budget and adjacency (the matched-epsilon comparison), the best
value of a column is bold only when it beats the runner-up at the 95% level: paired seed by
seed (:func:`isoeps.results.stats.compare_paired`), Holm-corrected across every such comparison
of the table. Otherwise both are marked :data:`TIED_MARK`, and the table's notes say what would
resolve the difference.

Replace-one and add/remove epsilons are not comparable: a table whose private rows are all of
one adjacency says which in its caption; one that holds both marks every replace-one row's ε
with :data:`REPLACE_ONE_MARK` and explains it in the caption.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from isoeps.reports import audit_column
from isoeps.reports.spec import ReportSpec
from isoeps.results import stats
from isoeps.results.compare import ci_methods, seed_values, value_ci

#: Marks a replace-one row in a table that also holds add/remove rows.
REPLACE_ONE_MARK = "‡"
#: Marks the two best values of a column at one ε when they are not distinguishable.
TIED_MARK = "≈"

_ADJACENCY_NAMES = {"add_remove": "add/remove", "replace_one": "replace-one"}


@dataclass(frozen=True)
class Cell:
    """One (method, budget, metric) entry: its values by seed and their mean and t-CI."""

    interval: stats.Interval
    seeds: dict[int, float]
    #: The value's own CI when there is one seed and its metric recorded one.
    value_ci: tuple[float, float] | None = None
    std: float | None = None

    @property
    def mean(self) -> float:
        return self.interval.mean

    @property
    def n(self) -> int:
        return self.interval.n


@dataclass
class Table:
    dataset: str
    metrics: list[str]
    #: {method, budget, adjacency, marked, cells: {metric: Cell}, bold, tied}
    rows: list[dict[str, Any]]
    caption: str
    not_dp: set[str]
    #: One line per comparison of a best value with its runner-up (and what it would take).
    notes: list[str] = field(default_factory=list)
    #: The audited bounds by row (:func:`isoeps.reports.audit_column.audit_bounds`); when
    #: any, the table has an "audited ε (lower bound)" column.
    audits: dict[tuple, dict] = field(default_factory=dict)

    def audit_text(self, row: dict[str, Any]) -> str:
        """The row's entry of the audited-ε column."""
        key = audit_column.row_key(row["method"], row["budget"], row.get("adjacency"))
        return audit_column.bound_text(self.audits.get(key))


def budget_order(budget: str) -> tuple[int, float]:
    if budget == "public":
        return (0, 0.0)
    if budget == "inf":
        return (2, 0.0)
    return (1, float(budget))


def _with_adjacency(frame: Any) -> Any:
    """``frame`` with ``adjacency`` filled: "" where unknown (public rows have no ledger)."""
    adjacency = frame.get("adjacency")
    return frame.assign(adjacency="" if adjacency is None else adjacency.fillna("").astype(str))


def private_adjacencies(frame: Any) -> list[str]:
    """The adjacencies of ``frame``'s private rows (``inf``/``public`` rows have no epsilon)."""
    frame = _with_adjacency(frame)
    private = frame[~frame["budget"].isin(["inf", "public"])]
    return sorted(a for a in private["adjacency"].unique() if a)


#: What one table cell summarises.
SUMMARY_KEYS = ("dataset", "method", "method_name", "budget", "adjacency", "metric")


def summarise(frame: Any) -> dict[tuple, tuple[Cell, bool]]:
    """Each (dataset, method, method_name, budget, adjacency, metric) group's :class:`Cell`
    and its metric's ``higher_is_better``, in the order the groups first appear.

    Args:
        frame: the tidy frame.

    Returns:
        ``{group key: (cell, higher_is_better)}``.
    """
    frame = _with_adjacency(frame)
    out = {}
    for key, group in frame.groupby(list(SUMMARY_KEYS), sort=False):
        seeds = seed_values(group)
        values = list(seeds.values())
        interval = stats.t_interval(values) if values else stats.Interval(math.nan, None, 0)
        std = float(group["value"].std()) if len(values) > 1 else None
        cell = Cell(interval, seeds, value_ci(group) if len(values) == 1 else None, std)
        out[key] = (cell, bool(group["higher_is_better"].iloc[0]))
    return out


def caption_for(frame: Any, dataset: str) -> str:
    """The caption of one dataset's table: seeds and CIs, privacy setting, accountants, n and
    backbones. It says whether the run was secure; a mix of adjacencies is marked.

    Args:
        frame: the tidy frame the table is built from.
        dataset: the dataset's label.

    Returns:
        The caption text.
    """
    part = frame[frame["dataset"] == dataset]
    accountants = sorted({a for a in part["accountant"].dropna().unique()})
    adjacency = private_adjacencies(part)
    mixed = len(adjacency) > 1
    n_values = sorted({int(n) for n in part["n"].dropna().unique()})
    backbones = sorted({str(b) for b in part["backbone"].dropna().unique()})
    deltas = sorted({f"{d:.2e}" for d in part["delta"].dropna().unique()})
    secure = bool(len(part)) and bool(part["secure"].all())
    if mixed:
        adjacency_text = (
            f"add/remove adjacency; {REPLACE_ONE_MARK} replace-one adjacency (ε not "
            "comparable with add/remove)"
        )
    else:
        only = adjacency[0] if adjacency else "add_remove"
        adjacency_text = f"{_ADJACENCY_NAMES.get(only, only)} adjacency"
    text = (
        f"{dataset}: {_uncertainty_text(part)} Per-image DP "
        f"((ε, δ), {adjacency_text}; "
        f"δ = {', '.join(deltas) or 'n/a'}); ε re-accounted by {', '.join(accountants) or 'n/a'} "
        f"(primary: prv upper bound; pld for replace-one). n = {', '.join(map(str, n_values))} "
        f"samples; backbone(s): {', '.join(backbones) or 'n/a'}. Bold: better than the "
        f"runner-up among rows at the same ε{' and adjacency' if mixed else ''} at the 95% "
        f"level, Holm-corrected across the table; {TIED_MARK}: the two best are not "
        "distinguishable at that level. † reads the private split at evaluation (not DP). "
    )
    text += "Secure run." if secure else "Benchmark run, not a DP release."
    return text


def _uncertainty_text(part: Any) -> str:
    """What a cell's numbers are: seeds, the CI across them, the per-value CIs and the test."""
    seeds = part["seed"].nunique()
    methods = ci_methods(part)
    own = f" ({'; '.join(methods)})" if methods else ""
    if seeds > 1:
        return (
            f"mean ± half-width of the 95% t-CI over {seeds} seeds, the count of seeds in "
            "parentheses; best values are compared seed by seed (paired t-test: pairing removes "
            "the variation two rows share, so a bold value's CI may overlap the runner-up's)."
        )
    return (
        "one seed (n=1): no CI across seeds. A value's own 95% CI [low, high] is shown where "
        f"its metric records one{own}; two such values are compared by their CIs combined, "
        "which measure sampling noise only, not training randomness (a bold value is better "
        "for this seed's samples; more seeds would test it across training runs)."
    )


def build_tables(frame: Any, spec: ReportSpec, *, audits: Any = None) -> list[Table]:
    """One table per dataset.

    Args:
        frame: the tidy frame of the rows to tabulate.
        spec: which metrics, methods and budgets to show, in which order.
        audits: the store's audited runs (:func:`isoeps.results.audits.load_audits`); those
            of the frame's cells fill an "audited ε (lower bound)" column. None: no column.

    Returns:
        The tables, in the order the datasets first appear in ``frame``.
    """
    if frame.empty:
        return []
    summary = summarise(frame)
    tables = []
    for dataset in dict.fromkeys(key[0] for key in summary):
        part = {key[1:]: value for key, value in summary.items() if key[0] == dataset}
        metrics = _chosen(list(dict.fromkeys(key[4] for key in part)), spec.metrics)
        methods = _chosen(list(dict.fromkeys(key[0] for key in part)), spec.methods)
        higher = {key[4]: hib for key, (_, hib) in part.items()}
        mixed = len(private_adjacencies(frame[frame["dataset"] == dataset])) > 1
        rows = [row for method in methods for row in _method_rows(part, method, spec, mixed)]
        notes = _mark_leaders(rows, metrics, higher, spec)
        not_dp = set(frame[(frame["dataset"] == dataset) & frame["not_dp"]]["metric"])
        caption = caption_for(frame, dataset)
        ids = set(frame[frame["dataset"] == dataset]["cell_id"])
        bounds = audit_column.audit_bounds(audits, dataset=dataset, cell_ids=ids)
        if bounds:
            caption = f"{caption} {audit_column.caption_note(bounds)}"
        tables.append(Table(dataset, metrics, rows, caption, not_dp, notes, bounds))
    return tables


def _chosen(found: list[str], wanted: list[str] | None) -> list[str]:
    """``found``, or the ``wanted`` ones among them in the spec's order."""
    return found if wanted is None else [m for m in wanted if m in found]


def _method_rows(
    part: dict[tuple, tuple[Cell, bool]], method: str, spec: ReportSpec, mixed: bool
) -> list[dict[str, Any]]:
    """A method's rows of one dataset's summary (keyed (method, method_name, budget,
    adjacency, metric)): per budget (public, private, inf) and adjacency, its cells;
    replace-one private rows are marked in a ``mixed`` table."""
    mine = {key[2:]: cell for key, (cell, _) in part.items() if key[0] == method}
    budgets = sorted({budget for budget, _, _ in mine}, key=budget_order)
    rows = []
    for budget in _chosen(budgets, spec.budgets):
        for adjacency in sorted({a for b, a, _ in mine if b == budget}):
            cells = {m: cell for (b, a, m), cell in mine.items() if (b, a) == (budget, adjacency)}
            marked = mixed and adjacency == "replace_one" and budget not in ("inf", "public")
            rows.append(
                {
                    "method": method,
                    "budget": budget,
                    "adjacency": adjacency,
                    "marked": marked,
                    "cells": cells,
                    "bold": set(),
                    "tied": set(),
                }
            )
    return rows


def _leaders(
    rows: list[dict[str, Any]], metrics: list[str], higher: dict[str, bool]
) -> list[tuple[str, dict[str, Any], dict[str, Any], stats.Comparison | None]]:
    """(metric, best row, runner-up row, best − runner-up) for every column and group of rows
    at the same budget and adjacency where at least two rows hold a finite value."""
    out = []
    for metric in metrics:
        groups = dict.fromkeys((r["budget"], r["adjacency"]) for r in rows)
        for budget, adjacency in groups:
            peers = [
                r
                for r in rows
                if (r["budget"], r["adjacency"]) == (budget, adjacency)
                and metric in r["cells"]
                and not math.isnan(r["cells"][metric].mean)
            ]
            if len(peers) < 2:
                continue
            peers.sort(key=lambda r: r["cells"][metric].mean, reverse=higher[metric])
            best, runner = peers[0]["cells"][metric], peers[1]["cells"][metric]
            result = stats.compare_paired(
                best.seeds, runner.seeds, a_ci=best.value_ci, b_ci=runner.value_ci
            )
            out.append((metric, peers[0], peers[1], result))
    return out


def _mark_leaders(
    rows: list[dict[str, Any]], metrics: list[str], higher: dict[str, bool], spec: ReportSpec
) -> list[str]:
    """Bold each column's best value that beats its runner-up at 95% (Holm across the
    table's comparisons), else mark both tied; return a note per comparison."""
    leaders = _leaders(rows, metrics, higher)
    adjusted = iter(stats.holm([c.p_value for *_, c in leaders if c is not None]))
    family = sum(c is not None for *_, c in leaders)
    notes = []
    for metric, best, runner, result in leaders:
        p_holm = None if result is None else next(adjusted)
        if result is not None and stats.better(
            result, higher_is_better=higher[metric], p_value=p_holm
        ):
            best["bold"].add(metric)
        else:
            best["tied"].add(metric)
            runner["tied"].add(metric)
        notes.append(_note(metric, best, runner, result, p_holm, family, spec))
    return notes


def _note(
    metric: str,
    best: dict[str, Any],
    runner: dict[str, Any],
    result: stats.Comparison | None,
    p_holm: float | None,
    family: int,
    spec: ReportSpec,
) -> str:
    """One comparison, as the table's notes print it."""
    where = f"ε={_budget_text(best)}, {spec.name(metric)}"
    pair = f"{spec.name(best['method'])} − {spec.name(runner['method'])}"
    if result is None:
        return f"{where}: {pair}: one seed without per-value CIs, no test possible; run more seeds"
    decimals = spec.decimals_for(metric)
    text = (
        f"{where}: {pair} = {result.diff:+.{decimals}f}, 95% CI [{result.low:+.{decimals}f}, "
        f"{result.high:+.{decimals}f}] ({result.test}, n={result.n}, p={result.p_value:.2g}, "
        f"Holm p={p_holm:.2g} over {family})"
    )
    hint = stats.resolution_hint(result)
    if hint is not None:
        return f"{text}: {hint}"
    if metric in best["tied"]:
        return f"{text}: significant alone, not after the Holm correction across the table"
    return text


def _cell_text(cell: Cell | None, decimals: int, pm: str) -> str:
    """A cell's numbers (``–`` for none): see :func:`interval_text`."""
    if cell is None:
        return "–"
    return interval_text(cell.interval, decimals=decimals, pm=pm, value_ci=cell.value_ci)


def interval_text(
    interval: stats.Interval,
    *,
    decimals: int,
    pm: str = "±",
    value_ci: tuple[float, float] | None = None,
) -> str:
    """``mean ± half-width (n)``; one seed: the value with its own CI ``[low, high] (n=1)``
    when it has one, else ``(n=1, no CI)``.

    Args:
        interval: the mean over seeds and its CI.
        decimals: the decimals printed.
        pm: the plus-minus sign (``$\\pm$`` in LaTeX).
        value_ci: a one-seed value's own CI.

    Returns:
        The text.
    """
    text = f"{interval.mean:.{decimals}f}"
    if interval.half_width is not None:
        return f"{text} {pm} {interval.half_width:.{decimals}f} ({interval.n})"
    if value_ci is not None:
        return f"{text} [{value_ci[0]:.{decimals}f}, {value_ci[1]:.{decimals}f}] (n=1)"
    return f"{text} (n=1, no CI)"


def _header(table: Table, spec: ReportSpec) -> list[str]:
    out = []
    for metric in table.metrics:
        name = spec.name(metric) + ("†" if metric in table.not_dp else "")
        out.append(name)
    return out


def to_markdown(table: Table, spec: ReportSpec) -> str:
    """A Markdown table: bold dataset name, a row per (method, ε), then the caption.

    Args:
        table: the built table.
        spec: the report spec (names, decimals).

    Returns:
        The Markdown text.
    """
    header = ["method", "ε", *_header(table, spec)]
    if table.audits:
        header.append(audit_column.HEADER)
    lines = [
        f"**{table.dataset}**",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for row in table.rows:
        cells = [_marked(row, metric, spec, "±", "**{}**") for metric in table.metrics]
        if table.audits:
            cells.append(table.audit_text(row))
        lines.append(
            f"| {spec.name(row['method'])} | {_budget_text(row)} | " + " | ".join(cells) + " |"
        )
    lines += ["", f"*{table.caption}*", ""]
    if table.notes:
        lines += ["Best against runner-up, per ε and column:", ""]
        lines += [f"- {note}" for note in table.notes]
        lines.append("")
    return "\n".join(lines)


def _marked(row: dict[str, Any], metric: str, spec: ReportSpec, pm: str, bold: str) -> str:
    """A cell's text, in ``bold`` (a format with one ``{}``) or marked tied."""
    text = _cell_text(row["cells"].get(metric), spec.decimals_for(metric), pm)
    if metric in row["bold"]:
        return bold.format(text)
    return f"{text} {TIED_MARK}" if metric in row["tied"] else text


_LATEX = {
    "&": r"\&",
    "%": r"\%",
    "_": r"\_",
    "#": r"\#",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "ε": r"$\varepsilon$",
    "δ": r"$\delta$",
    "±": r"$\pm$",
    "†": r"$^\dagger$",
    "‡": r"$^\ddagger$",
    "≈": r"$\approx$",
}


def _budget_text(row: dict[str, Any]) -> str:
    """The ε cell: the budget, marked when it is replace-one beside add/remove rows."""
    return f"{row['budget']}{REPLACE_ONE_MARK if row.get('marked') else ''}"


def _latex_escape(text: str) -> str:
    return "".join(_LATEX.get(char, char) for char in text)


def to_latex(table: Table, spec: ReportSpec) -> str:
    """A booktabs table fragment.

    Args:
        table: the built table.
        spec: the report spec (names, decimals).

    Returns:
        The LaTeX text, a ``table`` environment with the caption.
    """
    header = ["method", r"$\varepsilon$", *(_latex_escape(h) for h in _header(table, spec))]
    if table.audits:
        header.append(_latex_escape(audit_column.HEADER))
    columns = len(header) - 2
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\begin{tabular}{ll" + "r" * columns + "}",
        r"\toprule",
        " & ".join(header) + r" \\",
        r"\midrule",
    ]
    previous = None
    for row in table.rows:
        if previous is not None and row["method"] != previous:
            lines.append(r"\midrule")
        previous = row["method"]
        cells = [
            _marked(row, metric, spec, r"$\pm$", r"\textbf{{{}}}").replace(TIED_MARK, r"$\approx$")
            for metric in table.metrics
        ]
        if table.audits:
            cells.append(_latex_escape(table.audit_text(row)))
        lines.append(
            " & ".join(
                [_latex_escape(spec.name(row["method"])), _latex_escape(_budget_text(row)), *cells]
            )
            + r" \\"
        )
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        rf"\caption{{{_latex_escape(table.caption)}}}",
        r"\end{table}",
        "",
    ]
    return "\n".join(lines)


_CSV_HEADER = (
    "dataset", "method", "budget", "metric", "mean", "ci_half_width", "std", "seeds",
    "value_ci_low", "value_ci_high", "best", "tied", "adjacency",
)  # fmt: skip


def _audit_csv_rows(table: Table, row: dict[str, Any]) -> list[list[Any]]:
    """One CSV line per audit kind of ``row``: the largest bound over its audited seeds."""
    key = audit_column.row_key(row["method"], row["budget"], row.get("adjacency"))
    return [
        [table.dataset, row["method"], row["budget"], f"audited_epsilon_lower.{kind}", bound]
        + ["", "", seeds, "", "", 0, 0, row.get("adjacency", "")]
        for kind, (bound, seeds, _) in sorted(table.audits.get(key, {}).items())
    ]


def to_csv(table: Table, spec: ReportSpec) -> str:
    """The table as CSV: one line per (method, budget, metric) cell with a value.

    Args:
        table: the built table.
        spec: unused; taken for symmetry with the other writers.

    Returns:
        The CSV text, with a header line; ``ci_half_width`` is the 95% t-CI's over seeds
        (blank for one seed), ``value_ci_*`` a one-seed value's own CI, ``best`` is 1 for a
        bold cell and ``tied`` for one marked tied. An audited row adds one line per audit
        kind, metric ``audited_epsilon_lower.<kind>``, whose ``mean`` is the largest bound
        over its ``seeds``.
    """
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_CSV_HEADER)
    for row in table.rows:
        for metric in table.metrics:
            cell = row["cells"].get(metric)
            if cell is None:
                continue
            low, high = cell.value_ci or ("", "")
            writer.writerow(
                [
                    table.dataset,
                    row["method"],
                    row["budget"],
                    metric,
                    cell.mean,
                    _blank(cell.interval.half_width),
                    _blank(cell.std),
                    cell.n,
                    low,
                    high,
                    int(metric in row["bold"]),
                    int(metric in row["tied"]),
                    row.get("adjacency", ""),
                ]
            )
        writer.writerows(_audit_csv_rows(table, row))
    return buffer.getvalue()


def _blank(value: float | None) -> float | str:
    return "" if value is None else value
