"""A process renders an embedded dataset once: later cells of the same spec reuse its
read-only splits, while sources read from disk load afresh."""

from __future__ import annotations

import numpy as np
import pytest

from isoeps import registry
from isoeps.bench.data import load_cell_data
from isoeps.bench.spec import DatasetSpec
from isoeps.datasets.source import DatasetSource, SourceConfig
from isoeps.testing import tiny_split

LOADS: list[str] = []


class _CountingSource(DatasetSource):
    name = "test-counting"
    description = "tiny squares that count their loads"
    Config = SourceConfig

    def load(self, split, *, resolution=8, n=None, seed=0):
        LOADS.append(split)
        return tiny_split(split, n=n or 16, resolution=resolution, seed=seed, dataset=self.name)


class _RootConfig(SourceConfig):
    root: str | None = None


class _CountingDiskSource(_CountingSource):
    name = "test-counting-disk"
    Config = _RootConfig


@pytest.fixture(autouse=True)
def _sources():
    registry.register("isoeps.datasets", _CountingSource.name, _CountingSource, replace=True)
    registry.register(
        "isoeps.datasets", _CountingDiskSource.name, _CountingDiskSource, replace=True
    )
    LOADS.clear()


def _spec(name: str, **fields) -> DatasetSpec:
    return DatasetSpec(name=name, resolution=8, n={"private": 16}, **fields)


def test_an_embedded_dataset_is_rendered_once_per_process():
    first = load_cell_data(_spec("test-counting"))
    loads = len(LOADS)
    second = load_cell_data(_spec("test-counting"))
    assert len(LOADS) == loads == 4  # private, reference, eval, public: once
    assert second is not first
    np.testing.assert_array_equal(second.private.images, first.private.images)
    assert second.fingerprints() == first.fingerprints()


def test_memoised_splits_are_read_only_and_a_cell_replacing_one_does_not_leak():
    first = load_cell_data(_spec("test-counting"))
    with pytest.raises(ValueError, match="read-only"):
        first.private.images[0, 0, 0, 0] = 1
    first.private = first.reference  # what the audit's extend_private does to its CellData
    second = load_cell_data(_spec("test-counting"))
    assert second.private.split == "private"


def test_another_spec_renders_again():
    load_cell_data(_spec("test-counting"))
    load_cell_data(_spec("test-counting", data_seed=1))
    load_cell_data(_spec("test-counting", data_seed=1), validation=False)
    assert len(LOADS) == 8


def test_a_source_read_from_disk_loads_every_time(tmp_path):
    load_cell_data(_spec("test-counting-disk", root=str(tmp_path)))
    data = load_cell_data(_spec("test-counting-disk", root=str(tmp_path)))
    assert len(LOADS) == 8
    data.private.images[0, 0, 0, 0] = 1  # not memoised, so still the caller's to edit
