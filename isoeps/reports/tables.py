"""Tables: mean ± std over seeds per dataset, method and budget, as Markdown, LaTeX and CSV.

Rows are grouped by method: each method's ``public`` row, its private budgets (ascending
epsilon), then its ``inf`` row, so that a method stands beside its own family's floor and
ceiling. The best value of each column among rows with the same budget and adjacency (the
matched-epsilon comparison) is bold.

Replace-one and add/remove epsilons are not comparable: a table whose private rows are all of
one adjacency says which in its caption; one that holds both marks every replace-one row's ε
with :data:`REPLACE_ONE_MARK` and explains it in the caption.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from isoeps.reports.spec import ReportSpec

#: Marks a replace-one row in a table that also holds add/remove rows.
REPLACE_ONE_MARK = "‡"

_ADJACENCY_NAMES = {"add_remove": "add/remove", "replace_one": "replace-one"}


@dataclass
class Table:
    dataset: str
    metrics: list[str]
    #: {method, budget, adjacency, marked, cells: {metric: (mean, std, count)}, bold}
    rows: list[dict[str, Any]]
    caption: str
    not_dp: set[str]


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


def summarise(frame: Any) -> Any:
    """Mean, std and count over seeds per (dataset, method, budget, adjacency, metric)."""
    frame = _with_adjacency(frame)
    keys = ["dataset", "method", "method_name", "budget", "adjacency", "metric"]
    grouped = frame.groupby(keys, sort=False)
    out = grouped["value"].agg(["mean", "std", "count"]).reset_index()
    out["higher_is_better"] = grouped["higher_is_better"].first().to_numpy()
    return out


def caption_for(frame: Any, dataset: str) -> str:
    """The caption of one dataset's table: seeds, privacy setting, accountants, n and backbones.

    It says whether the run was secure; a mix of adjacencies is marked.

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
    seeds = sorted(part["seed"].unique())
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
        f"{dataset}: mean ± std over {len(seeds)} seed(s). Per-image DP "
        f"((ε, δ), {adjacency_text}; "
        f"δ = {', '.join(deltas) or 'n/a'}); ε re-accounted by {', '.join(accountants) or 'n/a'} "
        f"(primary: prv upper bound; pld for replace-one). n = {', '.join(map(str, n_values))} "
        f"samples; backbone(s): {', '.join(backbones) or 'n/a'}. Bold: best per column among "
        f"rows at the same ε{' and adjacency' if mixed else ''}. † reads the private split at "
        "evaluation (not DP). "
    )
    text += "Secure run." if secure else "Benchmark run, not a DP release."
    return text


def build_tables(frame: Any, spec: ReportSpec) -> list[Table]:
    """One table per dataset.

    Args:
        frame: the tidy frame of the rows to tabulate.
        spec: which metrics, methods and budgets to show, in which order.

    Returns:
        The tables, in the order the datasets first appear in ``frame``.
    """
    if frame.empty:
        return []
    summary = summarise(frame)
    tables = []
    for dataset in dict.fromkeys(summary["dataset"]):
        part = summary[summary["dataset"] == dataset]
        metrics = _chosen(list(dict.fromkeys(part["metric"])), spec.metrics)
        methods = _chosen(list(dict.fromkeys(part["method"])), spec.methods)
        higher = {m: bool(part[part["metric"] == m]["higher_is_better"].iloc[0]) for m in metrics}
        mixed = len(private_adjacencies(frame[frame["dataset"] == dataset])) > 1
        rows = [row for method in methods for row in _method_rows(part, method, spec, mixed)]
        _bold_best(rows, metrics, higher)
        not_dp = set(frame[(frame["dataset"] == dataset) & frame["not_dp"]]["metric"])
        tables.append(Table(dataset, metrics, rows, caption_for(frame, dataset), not_dp))
    return tables


def _chosen(found: list[str], wanted: list[str] | None) -> list[str]:
    """``found``, or the ``wanted`` ones among them in the spec's order."""
    return found if wanted is None else [m for m in wanted if m in found]


def _method_rows(part: Any, method: str, spec: ReportSpec, mixed: bool) -> list[dict[str, Any]]:
    """A method's rows of one dataset's summary: per budget (public, private, inf) and
    adjacency, its cells; replace-one private rows are marked in a ``mixed`` table."""
    budgets = sorted(set(part[part["method"] == method]["budget"]), key=budget_order)
    rows = []
    for budget in _chosen(budgets, spec.budgets):
        mine = part[(part["method"] == method) & (part["budget"] == budget)]
        for adjacency in sorted(set(mine["adjacency"])):
            sel = mine[mine["adjacency"] == adjacency]
            cells = {
                r.metric: (float(r["mean"]), _std(r["std"]), int(r["count"]))
                for _, r in sel.iterrows()
            }
            marked = mixed and adjacency == "replace_one" and budget not in ("inf", "public")
            rows.append(
                {
                    "method": method,
                    "budget": budget,
                    "adjacency": adjacency,
                    "marked": marked,
                    "cells": cells,
                    "bold": set(),
                }
            )
    return rows


def _bold_best(rows: list[dict[str, Any]], metrics: list[str], higher: dict[str, bool]) -> None:
    """Mark bold the best value of each metric among rows of the same budget and adjacency
    (when at least two rows compete)."""
    for metric in metrics:
        for budget, adjacency in {(r["budget"], r["adjacency"]) for r in rows}:
            peers = [
                r
                for r in rows
                if r["budget"] == budget and r["adjacency"] == adjacency and metric in r["cells"]
            ]
            values = [r["cells"][metric][0] for r in peers]
            finite = [v for v in values if not math.isnan(v)]
            if len(peers) < 2 or not finite:
                continue
            best = max(finite) if higher[metric] else min(finite)
            for r in peers:
                if r["cells"][metric][0] == best:
                    r["bold"].add(metric)


def _std(value: Any) -> float | None:
    return (
        None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    )


def _cell_text(cell: tuple[float, float | None, int] | None, decimals: int, pm: str) -> str:
    if cell is None:
        return "–"
    mean, std, _ = cell
    text = f"{mean:.{decimals}f}"
    if std is not None:
        text += f" {pm} {std:.{decimals}f}"
    return text


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
    lines = [
        f"**{table.dataset}**",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for row in table.rows:
        cells = []
        for metric in table.metrics:
            text = _cell_text(row["cells"].get(metric), spec.decimals_for(metric), "±")
            cells.append(f"**{text}**" if metric in row["bold"] else text)
        lines.append(
            f"| {spec.name(row['method'])} | {_budget_text(row)} | " + " | ".join(cells) + " |"
        )
    lines += ["", f"*{table.caption}*", ""]
    return "\n".join(lines)


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
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\begin{tabular}{ll" + "r" * len(table.metrics) + "}",
        r"\toprule",
        " & ".join(header) + r" \\",
        r"\midrule",
    ]
    previous = None
    for row in table.rows:
        if previous is not None and row["method"] != previous:
            lines.append(r"\midrule")
        previous = row["method"]
        cells = []
        for metric in table.metrics:
            text = _cell_text(row["cells"].get(metric), spec.decimals_for(metric), r"$\pm$")
            cells.append(rf"\textbf{{{text}}}" if metric in row["bold"] else text)
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


def to_csv(table: Table, spec: ReportSpec) -> str:
    """The table as CSV: one line per (method, budget, metric) cell with a value.

    Args:
        table: the built table.
        spec: unused; taken for symmetry with the other writers.

    Returns:
        The CSV text, with a header line; ``best`` is 1 for a bold cell.
    """
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["dataset", "method", "budget", "metric", "mean", "std", "seeds", "best", "adjacency"]
    )
    for row in table.rows:
        for metric in table.metrics:
            cell = row["cells"].get(metric)
            if cell is None:
                continue
            writer.writerow(
                [
                    table.dataset,
                    row["method"],
                    row["budget"],
                    metric,
                    cell[0],
                    "" if cell[1] is None else cell[1],
                    cell[2],
                    int(metric in row["bold"]),
                    row.get("adjacency", ""),
                ]
            )
    return buffer.getvalue()
