"""Smaller defects of issue 13, item 11: labels that escape the store, names checked only after
training, trackers and extraction files that leak by default, environment values stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import harness_plugin
import pytest

from isoeps import registry
from isoeps.bench import cells
from isoeps.bench.runner import run_suite
from isoeps.bench.spec import load_suite
from isoeps.bench.trackers import cell_event
from isoeps.errors import ConfigError
from isoeps.results import folders


def _suite(tmp_path: Path, text: str | None = None, **overrides) -> Path:
    overrides.setdefault("runtime", {"results": str(tmp_path / "results")})
    path = tmp_path / "suite.yaml"
    path.write_text(text or harness_plugin.suite_yaml(**overrides))
    return path


def _run(path: Path):
    spec = load_suite(path)
    expanded = cells.expand(spec)
    run_suite(expanded, store=Path(spec.runtime.results), runtime=spec.runtime)
    return spec, expanded


# -- labels name folders ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"datasets": {"../../x": {"name": "test-tiny", "resolution": 8}}}, "datasets"),
        ({"datasets": {"/abs": {"name": "test-tiny", "resolution": 8}}}, "datasets"),
        ({"methods": {"../m": {"method": "test-mean-image"}}}, "methods"),
        ({"methods": {"a/b": {"method": "test-mean-image"}}}, "methods"),
    ],
)
def test_unsafe_labels_are_refused_naming_the_field(tmp_path, change, field):
    with pytest.raises(ConfigError) as info:
        load_suite(_suite(tmp_path, **change))
    assert str(info.value).split(":")[1].strip().startswith(field), str(info.value)
    assert "label" in str(info.value)


def test_ordinary_labels_pass(tmp_path):
    spec = load_suite(
        _suite(
            tmp_path,
            datasets={"faces-32_v1.2": {"name": "test-tiny"}},
            methods={"wavelet-L2": {"method": "test-mean-image"}},
        )
    )
    assert list(spec.datasets) == ["faces-32_v1.2"]


# -- names checked when the suite expands -----------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cross_check_accountants": ["pld", "rdpp"]}, "cross_check_accountants[1]"),
        ({"metrics": {"fid": {"backbone": "incepton"}}}, "metrics.fid.backbone"),
        ({"metrics": {"kid": {"backbone": "clip:ViT-B-32"}}}, "metrics.kid.backbone"),
        ({"metrics": {"clip": {"backbone": "nowhere"}}}, "metrics.clip.backbone"),
    ],
)
def test_unknown_accountants_and_backbones_fail_at_expansion(tmp_path, change, field):
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace(".", r"\.")):
        cells.expand(load_suite(_suite(tmp_path, **change)))


def test_known_backbones_pass(tmp_path):
    spec = load_suite(
        _suite(
            tmp_path,
            metrics={"fid": {"backbone": "inception"}, "kid": {"backbone": "clip:ViT-B-32:/w.pt"}},
        )
    )
    assert cells.expand(spec)


# -- environment values are not stored --------------------------------------------------------


class _RootedConfig(harness_plugin.TinyConfig):
    root: str | None = None


class _RootedTiny(harness_plugin.TinySource):
    """The tiny squares, from a root (recorded: the cell must run with the resolved value)."""

    name = "test-tiny-rooted"
    Config = _RootedConfig
    roots: ClassVar[list[str | None]] = []

    def load(self, split, **kwargs):
        _RootedTiny.roots.append(self.config.root)
        return super().load(split, **kwargs)


def _env_suite(tmp_path: Path) -> Path:
    registry.register("isoeps.datasets", "test-tiny-rooted", _RootedTiny, replace=True)
    text = json.loads(harness_plugin.suite_yaml(budgets=["public"]))
    text["datasets"]["tiny"]["name"] = "test-tiny-rooted"
    text["datasets"]["tiny"]["root"] = "@ROOT@"
    text["runtime"] = {"results": "@RESULTS@"}
    return _suite(
        tmp_path,
        json.dumps(text)
        .replace('"@ROOT@"', "'${oc.env:ISOEPS_T_ROOT}'")
        .replace('"@RESULTS@"', "'${oc.env:ISOEPS_T_RESULTS}/store'"),
    )


def test_env_values_are_not_stored_and_do_not_change_the_cell_id(tmp_path, monkeypatch):
    secret_root = tmp_path / "secret-root-7f3a"
    secret_root.mkdir()
    monkeypatch.setenv("ISOEPS_T_ROOT", str(secret_root))
    monkeypatch.setenv("ISOEPS_T_RESULTS", str(tmp_path / "secret-results-9c1b"))
    path = _env_suite(tmp_path)
    _RootedTiny.roots.clear()
    spec, expanded = _run(path)
    assert set(_RootedTiny.roots) == {str(secret_root)}  # the cell ran with the value
    folder = folders.find_run(Path(spec.runtime.results), expanded[0].cell_id)
    assert folders.status_of(folder)["status"] == folders.FINISHED
    for name in (folders.CONFIG, folders.CELL):
        text = (folder / name).read_text()
        assert "${oc.env:ISOEPS_T_ROOT}" in text, name
        assert "secret-root-7f3a" not in text and "secret-results-9c1b" not in text, name
    assert "${oc.env:ISOEPS_T_RESULTS}/store" in (folder / folders.CONFIG).read_text()
    for file in folder.iterdir():  # nowhere in the run folder
        if file.suffix in (".json", ".yaml", ".txt"):
            assert "secret-root-7f3a" not in file.read_text(), file.name
    # a worker (or `isoeps run --from`) resolves it again in its own environment
    again = cells.Cell.model_validate(json.loads((folder / folders.CELL).read_text()))
    assert again.dataset.root == str(secret_root) and again == expanded[0]
    other = tmp_path / "other-root"
    other.mkdir()
    monkeypatch.setenv("ISOEPS_T_ROOT", str(other))
    assert [c.cell_id for c in cells.expand(load_suite(path))] == [expanded[0].cell_id]


def test_env_in_an_identity_field_is_refused_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ISOEPS_T_NOISE", "3")
    text = json.loads(harness_plugin.suite_yaml())
    text["methods"]["mean"]["config"] = {"noise_scale": "@N@"}
    path = _suite(tmp_path, json.dumps(text).replace('"@N@"', "'${oc.env:ISOEPS_T_NOISE}'"))
    with pytest.raises(ConfigError, match=r"methods\.mean\.config\.noise_scale"):
        load_suite(path)


# -- extraction.npz is opt-in -----------------------------------------------------------------


class _Extraction(harness_plugin.Brightness):
    name = "test-extraction"
    needs = frozenset({"extraction"})


@pytest.mark.parametrize("keep", [False, True])
def test_extraction_samples_are_stored_only_when_asked(tmp_path, keep):
    registry.register("isoeps.metrics", "test-extraction", _Extraction, replace=True)
    store = {"samples": "all", "grid_size": 4, **({"extraction": True} if keep else {})}
    spec, expanded = _run(
        _suite(
            tmp_path,
            budgets=["public"],
            extraction_samples=4,
            metrics={"test-extraction": {}},
            store=store,
        )
    )
    assert expanded[0].extraction_samples == 4
    folder = folders.find_run(Path(spec.runtime.results), expanded[0].cell_id)
    assert folders.status_of(folder)["status"] == folders.FINISHED
    assert (folder / folders.EXTRACTION).exists() is keep


# -- trackers: inf grids and not-DP values are opt-in -----------------------------------------


def _tracked_folder(tmp_path: Path, budget: str, upload: dict | None = None) -> Path:
    import yaml

    folder = tmp_path / f"run-{budget}"
    folders.write_json_atomic(
        folder / folders.CELL,
        {
            "cell_id": "c",
            "dataset_label": "d",
            "method_label": "m",
            "budget": budget,
            "seed": 0,
            "n_samples": 4,
        },
    )
    folders.write_json_atomic(folder / folders.STATUS, {"status": "finished"})
    folders.write_json_atomic(folder / folders.PRIVACY, {"epsilon_achieved": "inf"})
    folders.write_json_atomic(
        folder / folders.METRICS,
        {
            "values": [
                {"name": "kid", "metric": "kid", "value": 0.1, "not_dp": False},
                {"name": "attr_tv", "metric": "attr", "value": 0.3, "not_dp": True},
                {"name": "mem_ratio", "metric": "mem", "value": 2.0, "not_dp": True},
            ]
        },
    )
    (folder / folders.GRID).write_bytes(b"png")
    if upload is not None:
        (folder / folders.CONFIG).write_text(
            yaml.safe_dump({"runtime": {"tracker_upload": upload}})
        )
    return folder


def test_trackers_skip_inf_grids_and_not_dp_values_by_default(tmp_path):
    event = cell_event(_tracked_folder(tmp_path, "inf"))
    assert event["grid"] is None and set(event["scalars"]) == {"metrics/kid"}
    assert event["params"]["dp"] is False
    private = cell_event(_tracked_folder(tmp_path, "1"))
    assert private["grid"] is not None and private["grid_label"] == "samples"


def test_trackers_upload_them_when_opted_in_labelled(tmp_path):
    opted = {"inf_samples": True, "not_dp": True}
    for event in (
        cell_event(_tracked_folder(tmp_path, "inf"), opted),
        cell_event(_tracked_folder(tmp_path / "cfg", "inf", opted)),
    ):
        assert event["grid"] is not None and event["grid_label"] == "samples_not_dp_inf"
        assert set(event["scalars"]) == {"metrics/kid", "not_dp/metrics/attr_tv"}


def test_the_upload_options_are_runtime_fields(tmp_path):
    spec = load_suite(_suite(tmp_path), ["runtime.tracker_upload.inf_samples=true"])
    assert spec.runtime.tracker_upload.inf_samples and not spec.runtime.tracker_upload.not_dp
    assert not spec.store.extraction
