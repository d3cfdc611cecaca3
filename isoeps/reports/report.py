"""``reports/<suite>/``: tables, figures and an ``index.md`` that links them all."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from isoeps.reports import figures, published, tables
from isoeps.reports.spec import ReportSpec, load_report_spec
from isoeps.results import folders
from isoeps.results.artifacts import MEM_PAIRS
from isoeps.results.audits import load_audits
from isoeps.results.folders import write_text_atomic


def write_report(
    frame: Any,
    out: str | Path,
    *,
    title: str,
    notice: str = "",
    store: str | Path | None = None,
    cell_ids: set[str] | None = None,
    show_private: bool = False,
    spec: ReportSpec | str | Path | None = None,
    unverified: Mapping[str, Any] | None = None,
    inf_samples: bool = False,
) -> Path:
    """Write tables (md, tex, csv), figures (png, pdf) and ``index.md``; return its path.

    The cells in ``unverified``, and rows whose ``verified`` is False, are left out of every
    table and figure and listed with their reason (``isoeps report`` computes the verdicts;
    this package accounts nothing).

    Args:
        frame: the tidy frame (:func:`isoeps.results.load`).
        out: the report folder (created).
        title: the heading of ``index.md``.
        notice: said first, under the heading: what the run is and what it gives up (the
            suite's ``notice``).
        store: adds the sample grids, the cell statuses and, with ``show_private``, the
            memorisation pairs, for the cells in ``cell_ids``.
        cell_ids: the cells to report from ``store`` (default: those in ``frame``).
        show_private: draw the memorisation pairs (private training images).
        spec: a ReportSpec, or the path of a YAML one (default: the default spec).
        unverified: cell id -> reason (or ``{"run": ..., "reason": ...}``): the cells whose
            ledger did not re-account to their privacy record; None states that the ledgers
            were not re-verified for this report.
        inf_samples: show the ``inf`` rows (not DP) in the sample figures, labelled.

    Returns:
        The path of ``index.md``.
    """
    if not isinstance(spec, ReportSpec):
        spec = load_report_spec(spec)
    out = Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    bad = _unverified(frame, unverified)
    if bad:
        frame = frame[~frame["cell_id"].isin(set(bad))]
    ids = (set(frame["cell_id"]) if cell_ids is None else set(cell_ids)) - set(bad)
    lines = [f"# {title}", ""]
    if notice:
        lines += [f"> {notice.strip()}", ""]
    lines += _trust_statement(frame, unverified)
    lines += _unverified_lines(bad)
    if store is not None:
        lines += _cell_status_lines(store, ids)
    lines += _table_lines(frame, spec, out, audits=None if store is None else load_audits(store))
    lines += _published_lines(frame, spec, out)
    lines += _figure_lines(
        frame, spec, out, store=store, ids=ids, show_private=show_private, inf_samples=inf_samples
    )
    index = out / "index.md"
    write_text_atomic(index, "\n".join(lines))
    return index


def _trust_statement(frame: Any, unverified: Mapping[str, Any] | None) -> list[str]:
    """What the private rows guarantee, whether the ledgers were re-verified, secure or not."""
    secure = bool(len(frame)) and bool(frame["secure"].all())
    checked = unverified is not None or ("verified" in frame and frame["verified"].notna().any())
    return [
        "Every private row is per-image (ε, δ)-DP, re-accounted from the run's ledger with the "
        "PRV accountant (upper bound; pld for replace-one ledgers) and never above its target"
        + (
            "; every ledger was re-accounted again for this report and checked against its "
            "privacy.json and target. "
            if checked
            else "; the ledgers were not re-verified for this report (`isoeps report` does). "
        )
        + (
            "Secure run."
            if secure
            else "**Benchmark run, not a DP release**: seeds are stored, "
            "so the noise can be regenerated."
        ),
        "",
    ]


def _unverified_lines(bad: dict[str, dict[str, str]]) -> list[str]:
    """The list of the unverified cells and their reasons (nothing when there are none)."""
    if not bad:
        return []
    lines = [
        (
            "**Unverified cells, left out of every table and figure** (their "
            "ledger.json does not re-account to their privacy.json and target):"
        ),
        "",
    ]
    lines += [
        f"- unverified: `{entry['run']}` (cell `{cell_id}`): {entry['reason']}"
        for cell_id, entry in sorted(bad.items())
    ]
    lines.append("")
    return lines


def _cell_status_lines(store: str | Path, ids: set[str]) -> list[str]:
    """The count of the cells per status, then each cell that did not finish, with its reason."""
    cell_rows = _cell_rows(store, ids)
    if not cell_rows:
        return []
    counts: dict[str, int] = {}
    for row in cell_rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    lines = ["Cells: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())), ""]
    for row in cell_rows:
        if row["status"] != folders.FINISHED:
            lines.append(f"- {row['status']}: `{Path(row['run_dir']).name}`: {row['reason']}")
    lines.append("")
    return lines


def _table_lines(frame: Any, spec: ReportSpec, out: Path, *, audits: Any) -> list[str]:
    """Write every table as Markdown, LaTeX and CSV; the section that shows and links them."""
    lines = ["## Tables", ""]
    for table in tables.build_tables(frame, spec, audits=audits):
        stem = out / "tables" / figures._slug(table.dataset)
        markdown = tables.to_markdown(table, spec)
        write_text_atomic(stem.with_suffix(".md"), markdown)
        write_text_atomic(stem.with_suffix(".tex"), tables.to_latex(table, spec))
        write_text_atomic(stem.with_suffix(".csv"), tables.to_csv(table, spec))
        links = (
            f"[Markdown]({_rel(stem.with_suffix('.md'), out)}) · "
            f"[LaTeX]({_rel(stem.with_suffix('.tex'), out)}) · "
            f"[CSV]({_rel(stem.with_suffix('.csv'), out)})"
        )
        lines += [markdown, links, ""]
    if frame.empty:
        lines += ["No finished cells yet.", ""]
    return lines


def _published_lines(frame: Any, spec: ReportSpec, out: Path) -> list[str]:
    """isoeps's DPImageBench-protocol rows beside DPImageBench's published ones, per dataset
    the published table covers, with the accuracy-against-ε figure."""
    if frame.empty or "dataset_name" not in frame:
        return []
    lines = []
    for name in sorted(set(frame["dataset_name"].dropna())):
        table = published.placement_markdown(frame, name)
        if table is None:
            continue
        paths = published.accuracy_vs_epsilon(frame, name, out, spec)
        lines += [
            f"## Among the field: {name}",
            "",
            (
                "Rows labelled *published by DPImageBench, not re-run here* are DPImageBench's "
                f"own numbers (README section 7, commit {published.load_published().commit}; its "
                "full "
                "protocol: 60,000 samples, three classifiers for 50 epochs). isoeps's rows are the "
                "mean ± 95% t-CI half-width over seeds (n) of its `dpimagebench-*` values; a "
                "CPU-sized setting lists its deviations from that protocol in every value "
                "(`protocol_exact`, `deviations`), so compare with care. Accuracy in percent."
            ),
            "",
            table,
            "",
        ]
        lines += [f"![{p.stem}](figures/{p.name})" for p in paths if p.suffix == ".png"]
        lines.append("")
    return lines


def _figure_lines(
    frame: Any,
    spec: ReportSpec,
    out: Path,
    *,
    store: str | Path | None,
    ids: set[str],
    show_private: bool,
    inf_samples: bool,
) -> list[str]:
    """Draw every figure; the section that shows them, with notes on what was left out."""
    lines = ["## Figures", ""]
    written = [] if frame.empty else figures.metric_vs_epsilon(frame, out / "figures", spec)
    if store is not None:
        grids, left_out = _sample_figures(store, ids, out, spec, inf_samples=inf_samples)
        written += grids
        if left_out:
            lines += [
                (
                    "Sample figures leave out the `inf` rows (trained without clipping or "
                    "noise: not DP); pass `--inf-samples` to include them, labelled."
                ),
                "",
            ]
    if not frame.empty:
        written += figures.spectra(frame, out / "figures", spec)
    if show_private and store is not None:
        written += figures.memorisation_pairs(_mem_pairs(store, ids), out / "figures")
    elif store is not None and _mem_pairs(store, ids):
        lines += [
            (
                "Memorisation pairs show private training images and are omitted; "
                "pass `--show-private` to include them."
            ),
            "",
        ]
    for path in written:
        if path.suffix == ".png":
            image = (
                f"![{path.stem}]({_rel(path, out)}) ([PDF]({_rel(path.with_suffix('.pdf'), out)}))"
            )
            lines += [f"### {path.stem}", "", image, ""]
    return lines


def _sample_figures(
    store: str | Path, ids: set[str], out: Path, spec: ReportSpec, *, inf_samples: bool
) -> tuple[list[Path], bool]:
    """The sample grids (prompted, then open-prompt) of the finished cells in ``ids``, and
    whether ``inf`` rows were left out of them."""
    written: list[Path] = []
    left_out = False
    for file, open_prompt in ((folders.SAMPLES, False), (folders.OPEN_PROMPT_SAMPLES, True)):
        samples = [(c, p) for c, p in _finished_samples(store, file=file) if c["cell_id"] in ids]
        if not inf_samples:
            left_out = left_out or any(c["budget"] == "inf" for c, _ in samples)
            samples = [(c, p) for c, p in samples if c["budget"] != "inf"]
        written += figures.sample_grids(samples, out / "figures", spec, open_prompt=open_prompt)
    return written, left_out


def _unverified(frame: Any, unverified: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """cell id -> {"run", "reason"}: the given verdicts and rows marked ``verified`` False."""
    bad: dict[str, dict[str, str]] = {}
    for cell_id, entry in (unverified or {}).items():
        if isinstance(entry, Mapping):
            bad[cell_id] = {"run": str(entry.get("run", cell_id)), "reason": str(entry["reason"])}
        else:
            bad[cell_id] = {"run": cell_id, "reason": str(entry)}
    if "verified" in frame and len(frame):
        import pandas as pd

        marked = frame[frame["verified"].map(lambda v: not pd.isna(v) and not bool(v))]
        for row in marked.drop_duplicates("cell_id").itertuples():
            bad.setdefault(
                row.cell_id,
                {"run": Path(str(row.run_dir)).name, "reason": "marked unverified in the index"},
            )
    return bad


def _rel(path: Path, base: Path) -> str:
    return str(path.relative_to(base))


def _cell_rows(store: str | Path, ids: set[str]) -> list[dict[str, Any]]:
    from isoeps.results.frame import cell_row

    return [
        row
        for row in (cell_row(f) for f in folders.iter_run_dirs(Path(store)))
        if row["cell_id"] in ids
    ]


def _finished_samples(
    store: str | Path, *, file: str = folders.SAMPLES
) -> list[tuple[dict[str, Any], Path]]:
    from isoeps.results import finished_samples

    return finished_samples(store, file=file)


def _mem_pairs(store: str | Path, ids: set[str]) -> list[tuple[dict[str, Any], Path]]:
    out = []
    for folder in folders.iter_run_dirs(Path(store)):
        path = folder / MEM_PAIRS
        if path.is_file():
            cell = folders.read_json(folder / folders.CELL)
            if cell["cell_id"] in ids:
                out.append((cell, path))
    return out
