"""Suite spec: loading, overrides, sweeps, error messages naming the field, cell ids."""

from __future__ import annotations

import json

import harness_plugin
import pytest

from isoeps.bench import cells
from isoeps.bench.spec import load_suite
from isoeps.errors import ConfigError


def _suite(tmp_path, **overrides):
    path = tmp_path / "s.yaml"
    path.write_text(harness_plugin.suite_yaml(**overrides))
    return path


def test_overrides_and_list_sweeps(tmp_path):
    path = _suite(tmp_path)
    spec = load_suite(
        path, ["budgets=[1,5,inf]", "seeds=[0,1]", "methods.mean.sweep.noise_scale=[1.0,2.0]"]
    )
    expanded = cells.expand(spec)
    assert len(expanded) == 3 * 2 * 2
    labels = {c.method_label for c in expanded}
    assert labels == {"mean[noise_scale=1.0]", "mean[noise_scale=2.0]"}
    assert {c.method_config["noise_scale"] for c in expanded} == {1.0, 2.0}
    assert len({c.cell_id for c in expanded}) == len(expanded)


def test_runtime_and_root_do_not_change_cell_ids(tmp_path):
    path = _suite(tmp_path)
    base = {c.cell_id for c in cells.expand(load_suite(path))}
    data_root = tmp_path / "elsewhere"
    data_root.mkdir()
    moved = load_suite(
        path,
        [
            "runtime.device=cuda",
            "runtime.jobs=8",
            "runtime.executor=ray",
            f"runtime.results={tmp_path}/other",
            "runtime.trackers=[tensorboard]",
        ],
    )
    assert {c.cell_id for c in cells.expand(moved)} == base
    # roots are locations, not data: the data's content fingerprint is recorded per run
    spec = load_suite(path)
    spec.datasets["tiny"].root = str(data_root)
    assert {c.cell_id for c in cells.expand(spec)} == base


@pytest.mark.parametrize(
    "override",
    [
        "seeds=[7]",
        "n_samples=9",
        "methods.mean.config.noise_scale=3.0",
        "datasets.tiny.resolution=16",
        "delta=1e-6",
        "metrics.test-brightness.offset=1.0",
    ],
)
def test_experiment_changes_change_cell_ids(tmp_path, override):
    path = _suite(tmp_path, budgets=[1])
    before = {c.cell_id for c in cells.expand(load_suite(path))}
    after = {c.cell_id for c in cells.expand(load_suite(path, [override]))}
    assert before.isdisjoint(after), override


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"methods": {"mean": {"method": "no-such-method"}}}, "methods.mean.method"),
        ({"budgets": [1, -2]}, "budgets"),
        ({"budgets": [0]}, "budgets"),
        (
            {"datasets": {"tiny": {"name": "test-tiny", "root": "/no/such/root"}}},
            "datasets.tiny.root",
        ),
        ({"methods": {"mean": {"method": "test-mean-image", "confg": {}}}}, "methods.mean.confg"),
        ({"n_sample": 3}, "n_sample"),
        (
            {"methods": {"mean": {"method": "test-mean-image", "config": {"nois": 1}}}},
            "methods.mean.config.nois",
        ),
        ({"datasets": {"tiny": {"name": "no-such-data"}}}, "datasets.tiny.name"),
        ({"store": {"samples": "some"}}, "store.samples"),
        ({"metrics": {"no-such-metric": {}}}, "metrics.no-such-metric"),
        ({"open_prompt_samples": -1}, "open_prompt_samples"),
        ({"metrics": {"attr": {"classifier": {"steps": 0}}}}, "metrics.attr.classifier.steps"),
        ({"metrics": {"attr": {"classifier": {"width": 12}}}}, "metrics.attr.classifier.width"),
        ({"metrics": {"attr": {"classifier": {"stpes": 3}}}}, "metrics.attr.classifier.stpes"),
        ({"metrics": {"attr": {"classifer": {}}}}, "metrics.attr.classifer: unknown field"),
        ({"metrics": {"kid": {"num_subset": 10}}}, "metrics.kid.num_subset: unknown field"),
        ({"metrics": {"fid": {"batch_size": 0}}}, "metrics.fid.batch_size"),
        ({"metrics": {"clip": {"tiny_clip": {"widht": 8}}}}, "metrics.clip.tiny_clip.widht"),
        # a plugin metric without an Options model (its own keyword arguments) names it too
        ({"metrics": {"test-brightness": {"ofset": 1.0}}}, "metrics.test-brightness: "),
        ({"metrics": {"test-open-brightness": {"x": 1}}}, "metrics.test-open-brightness.x"),
    ],
)
def test_malformed_suite_names_the_field(tmp_path, change, field):
    path = _suite(tmp_path, **change)
    with pytest.raises(ConfigError) as info:
        cells.expand(load_suite(path))
    assert field in str(info.value), str(info.value)


def test_an_unknown_metric_option_lists_the_known_ones(tmp_path):
    path = _suite(tmp_path, metrics={"kid": {"num_subset": 10}})
    with pytest.raises(ConfigError) as info:
        cells.expand(load_suite(path))
    assert str(info.value) == (
        "metrics.kid.num_subset: unknown field; known fields: backbone, device, batch_size, "
        "weights, ci_resamples, num_subsets, subset_size"
    )


def test_method_config_errors_each_name_their_field(tmp_path):
    path = _suite(
        tmp_path,
        methods={"mean": {"method": "test-mean-image", "config": {"nois": 1, "noise_scale": "x"}}},
    )
    with pytest.raises(ConfigError) as info:
        cells.expand(load_suite(path))
    message = str(info.value)
    assert "methods.mean.config.nois: unknown field; known fields: " in message
    assert "methods.mean.config.noise_scale: " in message


@pytest.mark.parametrize("method", ["wavelet-two-stage", "dpagg-ti"])
def test_a_negative_pretrain_seed_names_the_field(tmp_path, method):
    path = _suite(tmp_path, methods={"m": {"method": method, "config": {"pretrain_seed": -1}}})
    with pytest.raises(ConfigError, match=r"methods\.m\.config\.pretrain_seed: .* 0 \(got -1\)"):
        cells.expand(load_suite(path))


def test_metric_options_enter_the_cell_id_as_given(tmp_path):
    """Defaults are not filled into the cell's metrics, so a metric's Options model (or a new
    option with a default) changes no stored id; options as written do."""
    path = _suite(tmp_path, budgets=[1], metrics={"kid": {}, "attr": {"classifier": {"steps": 3}}})
    (cell, *_) = cells.expand(load_suite(path))
    assert cell.metrics == {"kid": {}, "attr": {"classifier": {"steps": 3}}}
    assert cell.identity()["metrics"] == cell.metrics


def test_shipped_suites_are_yaml_files_and_a_yml_path_is_read(tmp_path):
    from importlib import resources

    from isoeps.bench.spec import SHIPPED_SUITES, SUITE_SUFFIX

    files = [p.name for p in resources.files("isoeps.suites").iterdir() if p.name[0] != "_"]
    assert {name for name in files if not name.endswith(".py")} == {
        f"{name}{SUITE_SUFFIX}" for name in SHIPPED_SUITES
    }
    yml = tmp_path / "s.yml"
    yml.write_text(harness_plugin.suite_yaml())
    assert load_suite(yml).name == load_suite(_suite(tmp_path)).name
    with pytest.raises(ConfigError, match="suite file not found"):
        load_suite(tmp_path / "missing.yml")


def test_typo_lists_known_fields(tmp_path):
    path = _suite(tmp_path, store={"sample": "all"})
    with pytest.raises(ConfigError, match=r"store\.sample: unknown field; known fields: samples"):
        load_suite(path)


def test_env_root_missing_names_the_field(tmp_path, monkeypatch):
    monkeypatch.delenv("ISOEPS_TEST_ROOT", raising=False)
    text = json.loads(harness_plugin.suite_yaml())
    text["datasets"]["tiny"]["root"] = "${oc.env:ISOEPS_TEST_ROOT}"
    path = tmp_path / "s.yaml"
    path.write_text(
        json.dumps(text).replace('"${oc.env:ISOEPS_TEST_ROOT}"', "'${oc.env:ISOEPS_TEST_ROOT}'")
    )
    with pytest.raises(ConfigError, match=r"datasets\.tiny\.root"):
        load_suite(path)


#: The built-in methods; the demo runs the first three (its shipped checkpoints cover those).
BUILT_IN = ("wavelet-two-stage", "dpsgd-full-finetune", "dpagg-ti", "private-evolution", "dp-ldm")


@pytest.mark.parametrize(
    ("name", "methods"), [("demo", 3), ("quick", 5), ("smoke", 5), ("fmnist", 5)]
)
def test_shipped_suites_validate(name, methods):
    spec = load_suite(name)
    assert spec.name == name
    assert {m.method for m in spec.methods.values()} == set(BUILT_IN[:methods])


def test_bumping_a_metrics_version_gives_new_cell_ids(monkeypatch):
    """Cells computed by an older version of a metric must not be reused as comparable."""
    from isoeps.metrics.attributes import AttributeMetric

    before = cells.expand(load_suite("smoke"))
    # kid (version 1) stays out, so cells of unchanged metrics keep their ids
    assert all(c.metric_versions == {"attr": AttributeMetric.version} for c in before)
    monkeypatch.setattr(AttributeMetric, "version", "99")
    after = cells.expand(load_suite("smoke"))
    assert not {c.cell_id for c in before} & {c.cell_id for c in after}


def test_the_demo_says_what_it_gives_up():
    """The demo suite's report opens with what it is and how to run the careful suite."""
    demo = load_suite("demo")
    assert demo.name == "demo" and demo.seeds == [0]
    for said in ("one seed", f"n = {demo.n_samples}", "isoeps run quick"):
        assert said in demo.notice
    assert demo.n_samples < load_suite("quick").n_samples


def test_the_style_capture_suite_reuses_the_quick_suites_public_models():
    """Its YAML promises the quick suite's cached public models: same data, same public config."""
    from isoeps.bench.runner import public_family

    style = cells.expand(load_suite("style-capture"))
    assert len(style) == 2 * 6 * 3
    assert {c.budget for c in style} == {"0.1", "0.3", "1", "10", "inf", "public"}
    assert all(c.dataset.n["private"] >= 20000 for c in style)
    quick = cells.expand(load_suite("quick"))
    families = {c.method_name: public_family(c) for c in quick}
    for cell in style:
        assert public_family(cell) == families[cell.method_name]
        assert cells.dataset_identity(cell.dataset) == cells.dataset_identity(quick[0].dataset)


@pytest.mark.parametrize(
    ("name", "env"), [("paper-coco", "COCO_ROOT"), ("paper-mmceleba", "MMCELEBA_ROOT")]
)
def test_paper_suites_need_their_root(name, env, monkeypatch, tmp_path):
    monkeypatch.delenv(env, raising=False)
    with pytest.raises(ConfigError, match="root"):
        load_suite(name)
    monkeypatch.setenv(env, str(tmp_path))
    spec = load_suite(name)
    assert len(spec.seeds) == 3 and spec.n_samples >= 5000
    assert [b for b in spec.budgets if not isinstance(b, str)] == [1.0, 5.0, 10.0]


def test_only_selects_cells(tmp_path):
    spec = load_suite(_suite(tmp_path))
    expanded = cells.expand(spec)
    chosen = cells.select(expanded, "budget=1.0,budget=inf")
    assert sorted(c.budget for c in chosen) == ["1", "inf"]
    with pytest.raises(ConfigError, match="--only"):
        cells.select(expanded, "colour=red")


@pytest.mark.parametrize(
    ("name", "count", "methods"), [("demo", 12, 3), ("quick", 20, 5), ("smoke", 10, 5)]
)
def test_shipped_suites_expand_against_the_real_registry(name, count, methods):
    expanded = cells.expand(load_suite(name))
    assert len(expanded) == count
    assert {c.method_name for c in expanded} == set(BUILT_IN[:methods])
    if name in ("demo", "quick"):
        assert all(c.dataset.n["private"] >= 20000 for c in expanded)
        assert {c.budget for c in expanded} == {"1", "10", "inf", "public"}


def test_each_cell_names_the_epsilon_its_metrics_read():
    """A private cell reads its target, an ``inf`` row infinity, a public row no ε at all."""
    by_budget = {c.budget: c.nominal_epsilon for c in cells.expand(load_suite("fmnist"))}
    assert by_budget == {"1": 1.0, "10": 10.0, "inf": float("inf"), "public": None}
