"""Reports from a synthetic tidy frame: table layout, bold, captions, spec, figures."""

from __future__ import annotations

import json

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
    # every seed's difference is the same, so the paired test resolves it despite the CIs
    assert "| wav | 1 | **0.205 ± 0.064 (2)** |" in markdown
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
    assert "| DP-SGD (all scales) | 1 | 0.3 ± 0.1 (2) |" in markdown and "KID" in markdown
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


def tidy(
    values: dict[tuple[str, str], list[float]],
    *,
    metric: str = "kid",
    higher: bool = False,
    ci: dict[tuple[str, str], tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """A tidy frame of one metric: (method, budget) -> its values at seeds 0, 1, ..."""
    rows = []
    for (method, budget), seeds in values.items():
        for seed, value in enumerate(seeds):
            row = {c: None for c in COLUMNS}
            low, high = (ci or {}).get((method, budget), (None, None))
            row.update(
                cell_id=f"{method}{budget}{seed}{metric}",
                dataset="faces",
                method=method,
                method_name=method,
                budget=budget,
                epsilon=float(budget),
                delta=1e-5,
                accountant="prv",
                adjacency="add_remove",
                seed=seed,
                n_samples=10,
                metric=metric,
                metric_group=metric,
                value=value,
                ci_low=low,
                ci_high=high,
                higher_is_better=higher,
                n=10,
                not_dp=False,
                secure=False,
                details="{}",
            )
            rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _marks(table) -> dict[str, tuple[set, set]]:
    return {r["method"]: (r["bold"], r["tied"]) for r in table.rows}


def test_overlapping_cis_bold_neither_and_mark_both_tied():
    (table,) = build_tables(
        tidy({("wav", "1"): [0.20, 0.26, 0.18], ("base", "1"): [0.22, 0.21, 0.24]}), ReportSpec()
    )
    wav, base = (r["cells"]["kid"] for r in table.rows)
    assert wav.interval.low < base.interval.high and base.interval.low < wav.interval.high
    assert _marks(table) == {"wav": (set(), {"kid"}), "base": (set(), {"kid"})}
    markdown = to_markdown(table, ReportSpec())
    assert "| wav | 1 | 0.213 ± 0.103 (3) ≈ |" in markdown
    assert "| base | 1 | 0.223 ± 0.038 (3) ≈ |" in markdown
    assert "≈: the two best are not distinguishable" in table.caption
    (note,) = table.notes
    assert note.startswith("ε=1, kid: wav − base = -0.010, 95% CI [")
    assert "paired t-test, n=3" in note and "no ordering is implied" in note
    assert "paired seeds (now 3) would resolve" in note
    assert r"$\approx$" in to_latex(table, ReportSpec())
    assert to_csv(table, ReportSpec()).splitlines()[1].endswith(",0,1,add_remove")


def test_a_clear_winner_is_bold_and_higher_is_better_is_respected():
    lower = tidy({("wav", "1"): [0.10, 0.12, 0.11], ("base", "1"): [0.30, 0.33, 0.31]})
    (table,) = build_tables(lower, ReportSpec())
    assert _marks(table) == {"wav": ({"kid"}, set()), "base": (set(), set())}
    assert "| wav | 1 | **0.110 ± 0.025 (3)** |" in to_markdown(table, ReportSpec())
    higher = tidy(
        {("wav", "1"): [0.10, 0.12, 0.11], ("base", "1"): [0.30, 0.33, 0.31]},
        metric="acc",
        higher=True,
    )
    (table,) = build_tables(higher, ReportSpec())
    assert _marks(table) == {"wav": (set(), set()), "base": ({"acc"}, set())}


def test_holm_across_the_table_can_undo_a_single_significance():
    from scipy import stats

    base = [0.30, 0.30, 0.30]
    wav = [0.20, 0.17, 0.23]  # differences 0.10, 0.13, 0.07
    assert stats.ttest_rel(wav, base).pvalue < 0.05
    one = tidy({("wav", "1"): wav, ("base", "1"): base})
    (table,) = build_tables(one, ReportSpec())
    assert _marks(table)["wav"] == ({"kid"}, set())
    both = pd.concat([one, tidy({("wav", "1"): wav, ("base", "1"): base}, metric="kid2")])
    (table,) = build_tables(both, ReportSpec())
    assert _marks(table) == {"wav": (set(), {"kid", "kid2"}), "base": (set(), {"kid", "kid2"})}
    assert all(
        "Holm p=0.057 over 2" in n and "not after the Holm correction" in n for n in table.notes
    )


def test_only_the_best_two_are_compared():
    values = {
        ("wav", "1"): [0.10, 0.12, 0.11],
        ("base", "1"): [0.30, 0.33, 0.31],
        ("agg", "1"): [0.50, 0.51, 0.56],
    }
    (table,) = build_tables(tidy(values), ReportSpec())
    assert _marks(table) == {"wav": ({"kid"}, set()), "base": (set(), set()), "agg": (set(), set())}
    assert [n.split(" = ")[0] for n in table.notes] == ["ε=1, kid: wav − base"]


def test_one_seed_shows_the_value_and_its_own_ci_or_says_there_is_none():
    values = {("wav", "1"): [0.20], ("base", "1"): [0.40], ("agg", "10"): [0.3], ("b", "10"): [0.5]}
    ci = {("wav", "1"): (0.18, 0.22), ("base", "1"): (0.37, 0.43)}
    data = tidy(values, ci=ci)
    own = {"level": 0.95, "method": "bootstrap", "resampled": "fake", "resamples": 200, "seed": 0}
    data.loc[data["method"] == "wav", "details"] = json.dumps({"ci": own})
    (table,) = build_tables(data, ReportSpec())
    assert "(bootstrap, resampling fake, 200 resamples, seed 0)" in table.caption
    markdown = to_markdown(table, ReportSpec())
    assert "| wav | 1 | **0.200 [0.180, 0.220] (n=1)** |" in markdown
    assert "| agg | 10 | 0.300 (n=1, no CI) ≈ |" in markdown
    assert "one seed (n=1): no CI across seeds" in table.caption
    assert "sampling noise only, not training randomness" in table.caption
    per_value, untested = table.notes
    assert "per-value CIs combined (one seed: sampling noise only)" in per_value
    assert "no test possible; run more seeds" in untested
    assert "0.18,0.22," in to_csv(table, ReportSpec())


def test_figure_bands_say_what_they_are(tmp_path):
    from isoeps.reports.figures import _interval, _method_legend, metric_vs_epsilon

    one = tidy({("wav", "1"): [0.20], ("base", "1"): [0.40]}, ci={("wav", "1"): (0.18, 0.22)})
    assert _interval(one[one["method"] == "wav"]) == (0.2, 0.18, 0.22, "value")
    assert _interval(one[one["method"] == "base"])[3] == "none"
    three = tidy({("wav", "1"): [0.1, 0.2, 0.3]})
    mean, low, high, kind = _interval(three)
    half_width = pytest.approx(0.1 * 4.302653 / 3**0.5)
    assert kind == "t" and high - mean == half_width and mean - low == half_width
    labels = [
        h.get_label()
        for h in _method_legend(
            ReportSpec(), ["wav", "base"], bands={"wav": {"value"}, "base": {"none"}}
        )
    ]
    assert labels[:2] == ["wav (n=1: its own CI)", "base (n=1: no CI band)"]
    assert "inf row and its band (method's colour)" in labels
    written = metric_vs_epsilon(
        pd.concat([one, three.assign(budget="10", epsilon=10.0)]), tmp_path, ReportSpec()
    )
    assert [p.suffix for p in written] == [".png", ".pdf"]


def _audits(rows: list[tuple[str, str, int, float]], kind: str = "black-box") -> pd.DataFrame:
    from isoeps.results.audits import AUDIT_COLUMNS

    out = []
    for method, budget, seed, bound in rows:
        row = {c: None for c in AUDIT_COLUMNS}
        row.update(
            cell_id=f"{method}{budget}{seed}",
            kind=kind,
            dataset="faces",
            method=method,
            budget=budget,
            seed=seed,
            adjacency="add_remove",
            epsilon_lower=bound,
            beta=0.05,
        )
        out.append(row)
    return pd.DataFrame(out, columns=list(AUDIT_COLUMNS))


def test_audited_rows_get_the_largest_bound_over_seeds_and_the_rest_a_dash():
    audits = _audits([("wav", "1", 0, 0.12), ("wav", "1", 1, 0.31), ("base", "10", 0, 0.5)])
    audits.loc[len(audits)] = {
        **audits.iloc[0].to_dict(),
        "cell_id": "elsewhere",
        "seed": 7,
        "epsilon_lower": 9.0,
    }  # fmt: skip  (not a cell of the frame)
    (table,) = build_tables(frame(), ReportSpec(), audits=audits)
    markdown = to_markdown(table, ReportSpec())
    assert "audited ε (lower bound)" in markdown.splitlines()[2]
    wav_1 = next(line for line in markdown.splitlines() if line.startswith("| wav | 1 |"))
    assert wav_1.endswith("| 0.31 (max of 2) |")  # not 9.0: that run audits no shown cell
    base_10 = next(line for line in markdown.splitlines() if line.startswith("| base | 10 |"))
    assert base_10.endswith("| 0.50 (n=1) |")
    assert "| – |" in next(line for line in markdown.splitlines() if "| wav | inf |" in line)
    assert "1 − nβ" in table.caption and "never the run whose metrics" in table.caption
    assert to_latex(table, ReportSpec()).count("&") > 0
    csv_lines = [line for line in to_csv(table, ReportSpec()).splitlines() if "audited" in line]
    assert len(csv_lines) == 2 and ",0.31,,,2," in csv_lines[0] + csv_lines[1]


def test_no_audits_no_column_and_both_kinds_named():
    (plain,) = build_tables(frame(), ReportSpec(), audits=None)
    assert "audited" not in to_markdown(plain, ReportSpec())
    both = pd.concat(
        [_audits([("wav", "1", 0, 0.2)]), _audits([("wav", "1", 0, 0.9)], kind="white-box")]
    )
    (table,) = build_tables(frame(), ReportSpec(), audits=both)
    wav_1 = next(
        line for line in to_markdown(table, ReportSpec()).splitlines() if "| wav | 1 |" in line
    )
    assert "black-box 0.20 (n=1); white-box 0.90 (n=1)" in wav_1
