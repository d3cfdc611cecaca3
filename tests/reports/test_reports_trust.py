"""Reports that do not trust blindly (issue 13): replace-one epsilons are marked beside
add/remove ones (item 1), unverified cells are left out and named (item 10), and ``inf``
sample grids appear only when asked for, labelled (item 11)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from isoeps.reports import ReportSpec, write_report
from isoeps.reports.tables import REPLACE_ONE_MARK, build_tables, to_csv, to_latex, to_markdown
from isoeps.results import COLUMNS, folders


def frame(adjacency: dict[str, str]) -> pd.DataFrame:
    """Two methods at epsilon 1 and inf; ``adjacency`` gives each method's private adjacency."""
    rows = []
    for method, value in (("agg", 0.1), ("wav", 0.2)):
        for budget in ("1", "inf"):
            for seed in (0, 1):
                row = {c: None for c in COLUMNS}
                row.update(
                    cell_id=f"{method}{budget}{seed}",
                    suite="s",
                    dataset="faces",
                    dataset_name="f",
                    method=method,
                    method_name=method,
                    budget=budget,
                    epsilon=None if budget == "inf" else 1.0,
                    delta=1e-5,
                    accountant="prv",
                    adjacency=adjacency[method] if budget != "inf" else "add_remove",
                    seed=seed,
                    n_samples=10,
                    metric="kid",
                    metric_group="kid",
                    value=value + 0.01 * seed,
                    higher_is_better=False,
                    n=10,
                    backbone="inception",
                    not_dp=False,
                    secure=False,
                    details="{}",
                    run_dir=f"/s/runs/x.{method}{budget}{seed}",
                )
                rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def test_a_table_with_both_adjacencies_marks_the_replace_one_rows():
    (table,) = build_tables(frame({"agg": "replace_one", "wav": "add_remove"}), ReportSpec())
    marked = {(r["method"], r["budget"]): r["marked"] for r in table.rows}
    assert marked == {
        ("agg", "1"): True,
        ("agg", "inf"): False,
        ("wav", "1"): False,
        ("wav", "inf"): False,
    }
    markdown = to_markdown(table, ReportSpec())
    assert f"| agg | 1{REPLACE_ONE_MARK} |" in markdown and "| wav | 1 |" in markdown
    assert "replace-one adjacency (ε not comparable with add/remove)" in table.caption
    # not compared with each other: each is the only row of its adjacency at epsilon 1
    bold = {(r["method"], r["budget"]): r["bold"] for r in table.rows}
    assert not bold[("agg", "1")] and not bold[("wav", "1")]
    assert r"$^\ddagger$" in to_latex(table, ReportSpec())
    csv_lines = to_csv(table, ReportSpec()).splitlines()
    assert csv_lines[0].endswith(",adjacency")
    assert any(
        line.startswith("faces,agg,1,") and line.endswith(",replace_one") for line in csv_lines
    )


def test_a_table_of_one_adjacency_names_it_and_marks_nothing():
    (table,) = build_tables(frame({"agg": "replace_one", "wav": "replace_one"}), ReportSpec())
    assert not any(r["marked"] for r in table.rows)
    assert "replace-one adjacency" in table.caption and "add/remove adjacency" not in table.caption
    assert "kid" in {(r["method"], r["budget"]): r["bold"] for r in table.rows}[("agg", "1")]


def test_unverified_cells_are_left_out_and_named(tmp_path):
    data = frame({"agg": "add_remove", "wav": "add_remove"})
    index = write_report(
        data,
        tmp_path / "r",
        title="t",
        unverified={"wav10": {"run": "x.wav10", "reason": "edited privacy.json"}},
    )
    text = index.read_text()
    assert "unverified: `x.wav10` (cell `wav10`): edited privacy.json" in text
    assert "re-accounted again for this report" in text
    (table,) = build_tables(data[data["cell_id"] != "wav10"], ReportSpec())
    wav = next(r for r in table.rows if (r["method"], r["budget"]) == ("wav", "1"))
    assert wav["cells"]["kid"].n == 1  # one seed left
    assert "| wav | 1 | 0.210 (n=1, no CI)" in (tmp_path / "r" / "tables" / "faces.md").read_text()


def test_rows_marked_unverified_in_the_index_are_left_out(tmp_path):
    data = frame({"agg": "add_remove", "wav": "add_remove"})
    data["verified"] = [c not in ("wav10", "wav11") for c in data["cell_id"]]
    text = write_report(data, tmp_path / "r", title="t").read_text()
    assert "marked unverified in the index" in text
    assert "| wav | 1 |" not in (tmp_path / "r" / "tables" / "faces.md").read_text()


def test_without_verdicts_the_report_says_it_did_not_verify(tmp_path):
    data = frame({"agg": "add_remove", "wav": "add_remove"})
    assert "not re-verified" in write_report(data, tmp_path / "r", title="t").read_text()


def test_a_suites_notice_opens_the_report_before_anything_else(tmp_path):
    data = frame({"agg": "add_remove", "wav": "add_remove"})
    text = write_report(
        data, tmp_path / "r", title="demo", notice="one seed, n = 200\n"
    ).read_text()
    assert text.startswith("# demo\n\n> one seed, n = 200\n\n")
    assert "> " not in write_report(data, tmp_path / "s", title="t").read_text().split("\n")[2]


def _sample_store(store):
    for budget in ("1", "inf"):
        folder = folders.run_dir(store, f"faces.wav.eps-{budget}.s0.wav{budget}0")
        folders.write_json_atomic(
            folder / folders.CELL,
            {
                "cell_id": f"wav{budget}0",
                "dataset_label": "faces",
                "method_label": "wav",
                "method_name": "wav",
                "budget": budget,
                "seed": 0,
            },
        )
        folders.write_json_atomic(folder / folders.STATUS, {"status": "finished"})
        folders.write_npz_atomic(
            folder / folders.SAMPLES,
            images=np.zeros((2, 3, 4, 4), dtype=np.uint8),
            prompts=np.asarray(["a", "b"]),
            eval_captions=np.asarray(["a", "b"]),
        )


def test_inf_sample_grids_only_on_request(tmp_path, monkeypatch):
    from isoeps.reports import figures

    store = tmp_path / "store"
    _sample_store(store)
    shown: list[list[str]] = []
    real = figures.sample_grids

    def spy(samples, out, spec, *, open_prompt=False, **kwargs):
        if not open_prompt:
            shown.append(sorted(c["budget"] for c, _ in samples))
        return real(samples, out, spec, open_prompt=open_prompt, **kwargs)

    monkeypatch.setattr(figures, "sample_grids", spy)
    data = frame({"agg": "add_remove", "wav": "add_remove"})
    ids = {"wav10", "wavinf0"}
    text = write_report(data, tmp_path / "a", title="t", store=store, cell_ids=ids).read_text()
    assert shown[-1] == ["1"] and "--inf-samples" in text
    write_report(data, tmp_path / "b", title="t", store=store, cell_ids=ids, inf_samples=True)
    assert shown[-1] == ["1", "inf"]
