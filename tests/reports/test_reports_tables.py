"""Reports from a synthetic tidy frame: table layout, bold, captions, spec, figures."""

from __future__ import annotations

import pandas as pd
import pytest

from isoeps.reports import ReportSpec, write_report
from isoeps.reports.tables import build_tables, to_csv, to_latex, to_markdown
from isoeps.results import COLUMNS


def frame(secure: bool = False) -> pd.DataFrame:
    rows = []
    values = {
        ("wav", "1"): 0.2,
        ("wav", "10"): 0.1,
        ("base", "1"): 0.3,
        ("base", "10"): 0.05,
        ("wav", "inf"): 0.01,
        ("wav", "public"): 0.5,
        ("base", "inf"): 0.02,
        ("base", "public"): 0.4,
    }
    for (method, budget), value in values.items():
        for seed in (0, 1):
            for metric, group, hib, shift in (
                ("kid", "kid", False, 0.0),
                ("attr_acc", "attr", True, 0.5),
            ):
                row = {c: None for c in COLUMNS}
                row.update(
                    cell_id=f"{method}{budget}{seed}",
                    suite="s",
                    dataset="faces",
                    dataset_name="synthetic-faces",
                    method=method,
                    method_name=method,
                    budget=budget,
                    epsilon=None if budget in ("inf", "public") else float(budget),
                    delta=1e-5,
                    accountant="prv",
                    adjacency="add_remove",
                    seed=seed,
                    n_samples=10,
                    metric=metric,
                    metric_group=group,
                    value=value + shift + 0.01 * seed,
                    higher_is_better=hib,
                    n=10,
                    backbone="inception",
                    not_dp=False,
                    secure=secure,
                    details="{}",
                )
                rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def test_rows_grouped_by_method_with_public_and_inf_and_bold_per_budget():
    (table,) = build_tables(frame(), ReportSpec())
    order = [(r["method"], r["budget"]) for r in table.rows]
    assert order == [
        ("wav", "public"),
        ("wav", "1"),
        ("wav", "10"),
        ("wav", "inf"),
        ("base", "public"),
        ("base", "1"),
        ("base", "10"),
        ("base", "inf"),
    ]
    bold = {(r["method"], r["budget"]): r["bold"] for r in table.rows}
    assert "kid" in bold[("wav", "1")] and "kid" not in bold[("base", "1")]  # lower is better
    assert "kid" in bold[("base", "10")] and "kid" not in bold[("wav", "10")]
    assert "attr_acc" in bold[("base", "1")]  # higher is better
    markdown = to_markdown(table, ReportSpec())
    assert "| wav | 1 | **0.205 ± 0.007** |" in markdown
    for phrase in (
        "Per-image DP",
        "prv",
        "add/remove",
        "n = 10",
        "inception",
        "Benchmark run, not a DP release",
    ):
        assert phrase in markdown, phrase


def test_secure_runs_drop_the_benchmark_stamp():
    (table,) = build_tables(frame(secure=True), ReportSpec())
    assert "not a DP release" not in table.caption and "Secure run" in table.caption


def test_latex_is_booktabs_and_csv_has_every_cell():
    (table,) = build_tables(frame(), ReportSpec())
    latex = to_latex(table, ReportSpec())
    assert r"\toprule" in latex and r"\bottomrule" in latex and r"\textbf{" in latex
    assert r"$\pm$" in latex and r"$\varepsilon$" in latex
    assert len(to_csv(table, ReportSpec()).strip().splitlines()) == 1 + 8 * 2


def test_spec_orders_renames_and_sets_decimals():
    spec = ReportSpec(
        methods=["base"],
        budgets=["1", "inf"],
        metrics=["kid"],
        decimals=1,
        names={"base": "DP-SGD (all scales)", "kid": "KID"},
    )
    (table,) = build_tables(frame(), spec)
    markdown = to_markdown(table, spec)
    assert [(r["method"], r["budget"]) for r in table.rows] == [("base", "1"), ("base", "inf")]
    assert "| DP-SGD (all scales) | 1 | 0.3 ± 0.0 |" in markdown and "KID" in markdown
    assert "attr_acc" not in markdown


def test_write_report_index_and_figures(tmp_path):
    index = write_report(frame(), tmp_path / "rep", title="quick")
    text = index.read_text()
    assert "tables/faces.md" in text and "figures/metrics_vs_eps_faces.png" in text
    for suffix in ("png", "pdf"):
        assert (tmp_path / "rep" / "figures" / f"metrics_vs_eps_faces.{suffix}").stat().st_size
    assert (tmp_path / "rep" / "tables" / "faces.tex").is_file()


def test_bad_report_spec_names_the_field(tmp_path):
    from isoeps.reports import load_report_spec

    path = tmp_path / "paper.yaml"
    path.write_text("method: [a]\n")
    with pytest.raises(ValueError, match="method"):
        load_report_spec(path)


def test_spectra_figure_from_metric_details(tmp_path):
    import json

    from isoeps.reports.figures import spectra

    rows = frame().head(4).copy()
    rows["metric_group"] = "spectrum"
    rows["metric"] = ["spectrum_distance", "wavelet_band_error"] * 2
    rows["details"] = [
        json.dumps({"log10_profile_fake": [1, 0.5, 0.1], "log10_profile_real": [1, 0.6, 0.3]}),
        json.dumps({"log10_energy_ratio": {"H1": -0.2, "V1": -0.1}}),
    ] * 2
    paths = spectra(rows, tmp_path, ReportSpec())
    assert sorted(p.name for p in paths) == ["spectra_faces.pdf", "spectra_faces.png"]
