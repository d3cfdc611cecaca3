"""DPImageBench's published rows: read from the data file, placed beside isoeps's rows."""

from __future__ import annotations

import re

import pandas as pd

from isoeps.reports.published import (
    PLACEMENT,
    accuracy_vs_epsilon,
    load_published,
    placement_markdown,
)
from isoeps.reports.spec import ReportSpec


def test_published_file_matches_the_readme_examples() -> None:
    """Spot checks against DPImageBench's README (section 7, commit 565f8d7)."""
    table = load_published()
    assert table.commit == "565f8d7" and "not re-run here" in table.label
    methods = table.methods("fashion-mnist")
    assert len(methods) == 13 and methods[0] == "DP-MERF" and methods[-1] == "PrivImage"
    assert table.value("fashion-mnist", "DPDM", "accuracy", 1.0) == 76.4
    assert table.value("fashion-mnist", "DPDM", "accuracy", 10.0) == 85.6
    assert table.value("fashion-mnist", "DPDM", "fid", 10.0) == 17.1
    assert table.value("fashion-mnist", "PE", "accuracy", 1.0) == 47.9
    assert table.value("fashion-mnist", "PE", "fid", 10.0) == 23.1
    assert table.value("fashion-mnist", "DP-LDM", "accuracy", 10.0) == 86.3
    assert table.value("fashion-mnist", "PrivImage", "fid", 10.0) == 5.3
    assert table.value("fashion-mnist", "PrivImage", "fid", 1.0) is None  # only at ε = 10
    for metric in ("accuracy", "fid", "is", "precision", "recall"):
        for method in methods:
            assert table.value("fashion-mnist", method, metric, 10.0) is not None


def _frame() -> pd.DataFrame:
    rows = []
    for seed, (a1, a10) in enumerate([(0.50, 0.70), (0.54, 0.74), (0.52, 0.72)]):
        for budget, acc in (("1", a1), ("10", a10), ("inf", 0.9)):
            rows.append(("fashion-mnist", "wts", budget, seed, PLACEMENT["accuracy"][0], acc))
        rows.append(("fashion-mnist", "wts", "10", seed, PLACEMENT["fid"][0], 40.0 + seed))
    rows.append(("synthetic-faces", "wts", "1", 0, PLACEMENT["accuracy"][0], 0.3))
    return pd.DataFrame(
        rows, columns=["dataset_name", "method", "budget", "seed", "metric", "value"]
    )


def test_placement_table_has_isoeps_rows_with_ci_and_the_published_rows() -> None:
    text = placement_markdown(_frame(), "fashion-mnist")
    lines = text.splitlines()
    ours = next(line for line in lines if "isoeps, this run" in line)
    # mean ± t_{0.975,2} · s / √3 (n): s = 2 points of accuracy, 1 of FID
    assert "52.0 ± 5.0 (3)" in ours and "72.0 ± 5.0 (3)" in ours and "41.0 ± 2.5 (3)" in ours
    assert any("non-private reference" in line and "90.0 ± 0.0 (3)" in line for line in lines)
    published = [line for line in lines if "published by DPImageBench, not re-run here" in line]
    assert len(published) == 13
    dpdm = next(line for line in published if line.startswith("| DPDM |"))
    assert re.search(r"76\.4 \| 85\.6 \| 17\.1 \| 3\.92 \| 0\.54 \| 0\.38", dpdm)


def test_a_counterparts_published_rows_sit_right_under_the_isoeps_method() -> None:
    frame = _frame().replace({"method": {"wts": "private-evolution"}})
    lines = placement_markdown(frame, "fashion-mnist").splitlines()
    ours = next(i for i, line in enumerate(lines) if "isoeps, this run" in line)
    assert lines[ours + 1].startswith("| PE | published by DPImageBench")
    assert "implements" in lines[ours + 1]
    assert sum(line.startswith("| PE |") for line in lines) == 1  # not listed twice
    assert sum("published by DPImageBench" in line for line in lines) == 13
    frame = _frame().replace({"method": {"wts": "dp-ldm"}})
    lines = placement_markdown(frame, "fashion-mnist").splitlines()
    ours = next(i for i, line in enumerate(lines) if "isoeps, this run" in line)
    # In the published table's order: DP-LDM (SD) comes first there.
    below = [line.split(" | ")[0] for line in lines[ours + 1 : ours + 3]]
    assert below == ["| DP-LDM (SD)", "| DP-LDM"]


def test_no_table_without_published_rows_or_protocol_values() -> None:
    assert placement_markdown(_frame(), "synthetic-faces") is None
    empty = _frame()[lambda f: f["metric"] == "kid"]
    assert placement_markdown(empty, "fashion-mnist") is None


def test_accuracy_figure(tmp_path) -> None:
    paths = accuracy_vs_epsilon(_frame(), "fashion-mnist", tmp_path, ReportSpec())
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size for p in paths)
    assert accuracy_vs_epsilon(_frame(), "synthetic-faces", tmp_path, ReportSpec()) == []


def test_the_report_places_isoeps_among_the_published_rows(tmp_path) -> None:
    from isoeps.reports import write_report
    from isoeps.results import COLUMNS

    rows = []
    for k, row in _frame().iterrows():
        full = {c: None for c in COLUMNS}
        full.update(
            row.to_dict(),
            cell_id=f"c{k}",
            suite="fmnist",
            dataset="fmnist",
            method_name=row["method"],
            epsilon=None if row["budget"] in ("inf", "public") else float(row["budget"]),
            delta=1e-5,
            accountant="prv",
            adjacency="add_remove",
            n_samples=10,
            metric_group="dpimagebench-utility",
            higher_is_better=True,
            n=10,
            not_dp=True,
            secure=False,
            details="{}",
        )
        rows.append(full)
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    index = write_report(frame, tmp_path, title="t").read_text()
    assert "## Among the field: fashion-mnist" in index
    assert "published by DPImageBench, not re-run here" in index
    assert "| **wts** | isoeps, this run | 52.0 ± 5.0 (3) | 72.0 ± 5.0 (3) |" in index
    assert "figures/accuracy_vs_eps_published_fashion-mnist.png" in index
    assert (tmp_path / "figures" / "accuracy_vs_eps_published_fashion-mnist.png").is_file()
