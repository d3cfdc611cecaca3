"""``isoeps metrics compute --protocol dpimagebench``: names, splits, truncation, errors."""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
import pytest
from metrics_fixtures import textured_images

from isoeps import registry
from isoeps.cli.main import main
from isoeps.cli.metrics import metric_names
from isoeps.datasets.base import ImageSplit
from isoeps.datasets.source import DatasetSource
from isoeps.errors import ConfigError
from isoeps.metrics.base import Metric, MetricInputs, MetricValue
from isoeps.metrics.dpimagebench.preprocess import PROTOCOL, truncate_unit

SEEDS = {"private": 10, "validation": 11, "reference": 12, "eval": 13}


class PaddedGray(DatasetSource):
    """A tiny Fashion-MNIST stand-in: gray 28x28 images zero-padded to 32 (padding 2)."""

    name = "test-dpib-gray"
    splits: ClassVar[tuple[str, ...]] = tuple(SEEDS)

    def load(self, split: str, *, resolution: int = 32, n: int | None = None, seed: int = 0):
        count = n or 16
        colour = textured_images(count, size=28, seed=SEEDS[split])
        gray = np.repeat(colour.mean(axis=1, keepdims=True).astype(np.uint8), 3, axis=1)
        return ImageSplit(
            dataset=self.name,
            split=split,
            ids=[f"{split}-{i}" for i in range(count)],
            images=np.pad(gray, ((0, 0), (0, 0), (2, 2), (2, 2))),
            captions=[[""] for _ in range(count)],
            info={"padding": 2},
        )


class InputsSpy(Metric):
    """Stands in for dpimagebench-utility (another module): records what the CLI wires."""

    name = "dpimagebench-utility"
    needs = frozenset({"private", "validation"})
    seen: ClassVar[list[MetricInputs]] = []

    def evaluate(self, inputs: MetricInputs) -> list[MetricValue]:
        InputsSpy.seen.append(inputs)
        return [MetricValue(name="accuracy", value=0.0, higher_is_better=True, n=len(inputs.fake))]


@pytest.fixture
def plugins(monkeypatch, tmp_path):
    monkeypatch.setenv("ISOEPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(registry._in_process["isoeps.datasets"], PaddedGray.name, PaddedGray)
    monkeypatch.setitem(registry._in_process["isoeps.metrics"], InputsSpy.name, InputsSpy)
    InputsSpy.seen.clear()


def _float_npz(path, n: int) -> np.ndarray:
    """A DPImageBench gen.npz: one channel, 28x28, floats that truncate and round differently."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(n, 1, 28, 28)).astype(np.float32)
    x[:, :, 0, 0] = 0.999  # 254.745: 254 truncated, 255 rounded
    np.savez(path, x=x, y=np.arange(n, dtype=np.int64) % 10)
    return x


def test_metric_names_per_protocol(monkeypatch) -> None:
    assert metric_names("fid,pr", protocol="isoeps") == ["fid", "pr"]
    assert metric_names(None, protocol="dpimagebench") == ["dpimagebench-fid", "dpimagebench-pr"]
    assert metric_names("fid, is,dpimagebench-pr", protocol="dpimagebench") == [
        "dpimagebench-fid",
        "dpimagebench-is",
        "dpimagebench-pr",
    ]
    for name in ("fld", "ir", "dpimagebench-fld"):
        with pytest.raises(ConfigError, match="not available offline"):
            metric_names(f"fid,{name}", protocol="dpimagebench")
    with pytest.raises(ConfigError, match="'kid' is not part of --protocol dpimagebench"):
        metric_names("kid", protocol="dpimagebench")
    names = registry.names
    monkeypatch.setattr(
        registry, "names", lambda group: [n for n in names(group) if "utility" not in n]
    )
    with pytest.raises(ConfigError, match="'dpimagebench-utility', which is not registered"):
        metric_names("utility", protocol="dpimagebench")


def test_protocol_wires_train_test_validation_and_truncates(plugins, tmp_path, capsys) -> None:
    x = _float_npz(tmp_path / "gen.npz", 6)
    args = ["metrics", "compute", "--protocol", "dpimagebench", "--real", PaddedGray.name]
    args += ["--fake", str(tmp_path / "gen.npz"), "--metrics", "fid,pr,utility"]
    assert main([*args, "--epsilon", "10", "--n", "8", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    values = {row["name"]: row for row in payload["values"]}
    assert payload["protocol"] == "dpimagebench"
    assert set(values) == {"dpib_fid", "dpib_precision", "dpib_recall", "accuracy"}
    for name in ("dpib_fid", "dpib_precision", "dpib_recall"):
        details = values[name]["details"]
        assert details["protocol"] == PROTOCOL and values[name]["reads_private"] is True
        assert details["reference"] == "private (sensitive train)"
        assert values[name]["n"] == 6 and values[name]["backbone"] == "pytorch-fid-inception"
        # samples are at the native 28x28 already; the padded train split is cropped
        crop = {"to_sensitive_resolution": {"from": 32, "to": 28, "mode": "crop-2"}}
        assert details["resolution"] == {"samples": {}, "reference": crop}
    assert values["dpib_fid"]["details"]["n_real"] == 8 and values["dpib_fid"]["value"] > 0
    (inputs,) = InputsSpy.seen
    assert (inputs.private.split, inputs.reference.split) == ("private", "reference")
    assert inputs.validation.split == "validation" and inputs.epsilon == 10.0
    assert len(inputs.private) == len(inputs.reference) == len(inputs.validation) == 8
    assert np.array_equal(inputs.fake, np.repeat(truncate_unit(x), 3, axis=1))


def test_isoeps_protocol_keeps_rounding_and_reference(plugins, tmp_path, capsys) -> None:
    _float_npz(tmp_path / "gen.npz", 4)
    args = ["metrics", "compute", "--real", PaddedGray.name, "--fake", str(tmp_path / "gen.npz")]
    assert main([*args, "--metrics", "dpimagebench-utility", "--n", "4", "--json"]) == 0
    (inputs,) = InputsSpy.seen
    assert inputs.reference.split == "reference" and inputs.validation is None
    assert inputs.fake[:, :, 0, 0].max() == 255  # rounded, isoeps's convention


def test_protocol_errors_are_one_line(plugins, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("ISOEPS_PT_INCEPTION_WEIGHTS", raising=False)
    _float_npz(tmp_path / "gen.npz", 4)
    base = ["metrics", "compute", "--protocol", "dpimagebench", "--fake", str(tmp_path / "gen.npz")]
    assert main([*base, "--real", f"{PaddedGray.name}:private"]) == 2
    assert "--real names a dataset" in capsys.readouterr().err
    assert main([*base, "--real", PaddedGray.name, "--metrics", "fid,fld"]) == 2
    assert "'fld' is not available offline" in capsys.readouterr().err
    assert main([*base, "--real", PaddedGray.name, "--metrics", "is"]) == 2
    assert "ISOEPS_PT_INCEPTION_WEIGHTS" in capsys.readouterr().err


def test_fashion_mnist_under_the_protocol(tmp_path, monkeypatch, capsys) -> None:
    """The real source, when its IDX files are installed: DPImageBench's train split."""
    if "fashion-mnist" not in registry.names("isoeps.datasets"):
        pytest.skip("the fashion-mnist source is not registered")
    from isoeps.errors import DataError

    try:
        registry.get("isoeps.datasets", "fashion-mnist")().locate()
    except DataError as exc:
        pytest.skip(str(exc))
    monkeypatch.setenv("ISOEPS_CACHE_DIR", str(tmp_path / "cache"))
    _float_npz(tmp_path / "gen.npz", 6)
    args = ["metrics", "compute", "--protocol", "dpimagebench", "--real", "fashion-mnist"]
    args += ["--fake", str(tmp_path / "gen.npz"), "--metrics", "fid", "--n", "6", "--json"]
    assert main(args) == 0
    (row,) = json.loads(capsys.readouterr().out)["values"]
    assert row["details"]["reference"] == "private (sensitive train)"
    assert row["details"]["n_real"] == 6 and row["value"] > 0
