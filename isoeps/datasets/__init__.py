"""Datasets: records, the four splits (and the optional validation split), the sources and the
DPImageBench npz format.

The public API (importing this package imports numpy and pydantic, never torch)::

    load_split(name, split, *, resolution=32, n=None, seed=0, root=None, options=None)
    load_splits(name, splits=None, *, resolution=32, n=None, seed=0, root=None, options=None)
    check_disjoint(splits)
    dataset_names()
    read_dpimagebench_npz(path) / write_dpimagebench_npz(path, *, images, labels, captions)
"""

from isoeps.datasets.api import dataset_names, get_source, load_split, load_splits
from isoeps.datasets.base import ALL_SPLITS, OPTIONAL_SPLITS, SPLITS, ImageSplit, Record
from isoeps.datasets.dpimagebench import read_dpimagebench_npz, write_dpimagebench_npz
from isoeps.datasets.splits import check_disjoint

__all__ = [
    "ALL_SPLITS",
    "OPTIONAL_SPLITS",
    "SPLITS",
    "ImageSplit",
    "Record",
    "check_disjoint",
    "dataset_names",
    "get_source",
    "load_split",
    "load_splits",
    "read_dpimagebench_npz",
    "write_dpimagebench_npz",
]
