"""A suite's audited runs: the ``audit:`` block, ``isoeps audit`` into the store, the index's
``audits`` table, the report's audited-epsilon column, and the folders isoeps did not write."""

from __future__ import annotations

import json
from pathlib import Path

import audit_plugin  # noqa: F401  (registers test-memorise)
import harness_plugin
import pytest

from isoeps.bench import cells
from isoeps.bench.audit_runs import audited_cells
from isoeps.bench.spec import AuditSpec, merge_config, validate
from isoeps.errors import ConfigError
from isoeps.results import folders, index

PRIVATE = 200  # records of the private split (the canaries must not outnumber them)


def _suite(tmp_path: Path, *, methods: dict, budgets: list, audit: dict | None) -> Path:
    extra = {} if audit is None else {"audit": audit}
    text = harness_plugin.suite_yaml(
        imports=["harness_plugin", "audit_plugin"],
        datasets={"tiny": {"name": "test-tiny", "resolution": 8, "n": {"private": PRIVATE}}},
        methods=methods,
        budgets=budgets,
        delta=1e-5,
        runtime={"results": str(tmp_path / "results"), "reports": str(tmp_path / "report")},
        **extra,
    )
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


def _spec(text: str):
    return validate(merge_config(text, [], origin="test"), origin="test")


@pytest.mark.parametrize(
    ("audit", "match"),
    [
        ({"m": 10, "k": 6}, "at most m/2"),
        ({"budgets": ["public"]}, "nothing to audit"),
        ({"budgets": [3]}, "not one of the suite's budgets"),
        ({"methods": ["nope"]}, "not a method label"),
        ({"beta": 1.5}, "beta"),
        ({"kinds": ["grey-box"]}, "kinds"),
    ],
)
def test_a_bad_audit_block_gets_a_named_error(audit: dict, match: str) -> None:
    text = harness_plugin.suite_yaml(audit=audit)
    with pytest.raises(ConfigError, match=match):
        _spec(text)


def test_the_block_selects_private_cells_of_its_budgets_methods_and_seeds() -> None:
    text = harness_plugin.suite_yaml(
        methods={
            "a": {"method": "test-mean-image", "config": {}},
            "b": {"method": "test-mean-image", "config": {"clip_norm": 2.0}},
        },
        seeds=[0, 1],
        audit={"budgets": [1, "inf"], "methods": ["a"], "seeds": [1]},
    )
    spec = _spec(text)
    chosen = audited_cells(cells.expand(spec), spec.audit)
    assert sorted((c.method_label, c.budget, c.seed) for c in chosen) == [
        ("a", "1", 1),
        ("a", "inf", 1),
    ]
    every = audited_cells(cells.expand(spec), AuditSpec())
    assert {c.budget for c in every} == {"1", "10", "inf"}  # never 'public'


def test_run_audits_the_block_indexes_it_and_reports_the_column(tmp_path: Path, capsys) -> None:
    from isoeps.cli.main import main

    suite = _suite(
        tmp_path,
        methods={"mem": {"method": "test-memorise", "config": {}}},
        budgets=[1, "public"],
        audit={"m": 100, "k": 25},
    )
    code = main(["run", str(suite)])
    err = capsys.readouterr().err
    assert code == 1 and "privacy bug" in err  # the memorising method is caught
    store = tmp_path / "results"
    (audited,) = folders.iter_audit_dirs(store)
    assert audited.parent.name == "black-box"
    row = index.read(store, table="audits").iloc[0]
    assert row["epsilon_lower"] > row["target_epsilon"] == 1
    assert row["m"] == 100 and row["k"] == 25 and row["beta"] == 0.05
    report = (tmp_path / "report" / "index.md").read_text()
    assert "audited ε (lower bound)" in report and "never the run whose metrics" in report
    # the audited run's metrics are never read: the metrics table holds the two cells only
    assert set(index.read(store)["run_dir"].map(lambda p: Path(p).parent.name)) == {"runs"}
    # a second run keeps the finished audit
    assert main(["run", str(suite)]) == 1
    assert "[kept]" in capsys.readouterr().err


def test_cli_audit_writes_into_the_store_and_keeps_finished_audits(tmp_path: Path, capsys) -> None:
    from isoeps.cli.main import main

    suite = _suite(
        tmp_path,
        methods={"mean": {"method": "test-mean-image", "config": {}}},
        budgets=[1, "public"],
        audit=None,
    )
    args = ["audit", str(suite), "--m", "40", "--k", "10", "--json"]
    assert main(args) == 0
    (row,) = json.loads(capsys.readouterr().out)["audits"]
    assert row["ran"] and row["epsilon_lower"] <= 1 and "coins" not in row
    store = tmp_path / "results"
    folder = folders.audit_dir(store, row["slug"], kind="black-box")
    assert folders.is_run_dir(folder) and (folder / folders.AUDIT).is_file()
    assert main(args) == 0
    assert not json.loads(capsys.readouterr().out)["audits"][0]["ran"]
    index.reindex(store)  # the audits table is rebuilt from the folders
    assert len(index.read(store, table="audits")) == 1


def test_cli_audit_refuses_a_folder_isoeps_did_not_write(tmp_path: Path, capsys) -> None:
    from isoeps.cli.main import main

    suite = _suite(
        tmp_path,
        methods={"mean": {"method": "test-mean-image", "config": {}}},
        budgets=[1],
        audit=None,
    )
    (cell,) = cells.expand(_spec(suite.read_text()))
    foreign = folders.audit_dir(tmp_path / "results", cell.slug, kind="black-box")
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    assert main(["audit", str(suite), "--m", "40", "--k", "10"]) == 2
    assert "not written by isoeps" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "mine"


def test_cli_audit_of_only_public_cells_says_nothing_to_audit(tmp_path: Path, capsys) -> None:
    from isoeps.cli.main import main

    suite = _suite(
        tmp_path,
        methods={"mem": {"method": "test-memorise", "config": {}}},
        budgets=["public"],
        audit=None,
    )
    assert main(["audit", str(suite)]) == 2
    assert "nothing to audit" in capsys.readouterr().err
