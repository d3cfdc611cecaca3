"""``isoeps prepare``: train each distinct public model of a suite once, before a fan-out."""

from __future__ import annotations

import time
from typing import Any

from isoeps.bench.cell_flow import build_method
from isoeps.bench.cells import Cell


def prepare_suite(cells: list[Cell], *, device: str = "cpu") -> list[dict[str, Any]]:
    """One row per distinct (dataset, method variant): its public-model cache key and time.

    Loads each dataset once and trains (or finds cached) each public model.

    Args:
        cells: the cells whose public models are prepared.
        device: where the public models train.

    Returns:
        Rows of ``dataset``, ``method``, ``key`` and ``seconds``.
    """
    from isoeps.bench.data import load_cell_data
    from isoeps.bench.public import prepare_public
    from isoeps.methods.base import MethodContext

    rows = []
    seen: set[tuple[str, str]] = set()
    data_by_label: dict[str, Any] = {}
    for cell in cells:
        key = (cell.dataset_label, cell.method_label)
        if key in seen:
            continue
        seen.add(key)
        if cell.dataset_label not in data_by_label:
            data_by_label[cell.dataset_label] = load_cell_data(cell.dataset)
        method = build_method(cell, ctx=MethodContext(device=device, seed=cell.seed))
        started = time.time()
        cache_key = prepare_public(method, data_by_label[cell.dataset_label].public)
        rows.append(
            {
                "dataset": cell.dataset_label,
                "method": cell.method_label,
                "key": cache_key,
                "seconds": time.time() - started,
            }
        )
    return rows
