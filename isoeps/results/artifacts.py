"""Sample and memorisation artifacts of a run folder: their names and their one writer each.

Reports read these files by the names defined here; the cell flow writes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from isoeps.results import folders

#: Written when a metric value's artifacts list ``closest_pairs`` (``[{"sample": j, "private_id":
#: id, "d_train": d}, ...]``, as the memorisation metric does). It holds private training
#: images; reports show it only with ``--show-private``.
MEM_PAIRS = "mem_pairs.npz"


def write_samples(
    folder: Path,
    *,
    samples: Any,
    source_ids: list[str],
    keep: str,
    grid_size: int,
    labels: np.ndarray | None = None,
    geometry: dict[str, int] | None = None,
    extraction: Any = None,
    open_samples: Any = None,
) -> None:
    """Write the prompted samples (and open-prompt samples) that ``keep`` asks for.

    Args:
        folder: the run folder.
        samples: the prompted :class:`~isoeps.methods.base.Samples`.
        source_ids: the reference record each prompt came from.
        labels: the class each prompt asked for (class-conditional sources), stored as
            ``labels`` for the DPImageBench export.
        geometry: the data's ``channels``, ``native_resolution`` and ``padding`` (see
            :func:`geometry_of`), stored beside the images so that an export can undo them.
        keep: ``"all"``, ``"grid"`` (the first ``grid_size``) or ``"none"``.
        grid_size: samples in the grid.
        extraction: extraction prompts and samples, written only with ``keep="all"`` (the
            caller passes them only when ``store.extraction`` opts in: they hold private
            training captions and record ids).
        open_samples: open-prompt samples, written beside the prompted ones.
    """
    count = {"all": len(samples.images), "grid": grid_size, "none": 0}[keep]
    if count:
        extra: dict[str, np.ndarray] = {}
        if labels is not None:
            extra["labels"] = np.asarray(labels[:count], dtype=np.int64)
        for name, number in (geometry or {}).items():
            extra[name] = np.asarray(number, dtype=np.int64)
        folders.write_npz_atomic(
            folder / folders.SAMPLES,
            images=samples.images[:count],
            prompts=np.asarray(samples.prompts[:count], dtype=str),
            eval_captions=np.asarray(samples.eval_captions[:count], dtype=str),
            source_ids=np.asarray(source_ids[:count], dtype=str),
            **extra,
        )
    if extraction is not None and keep == "all":
        folders.write_npz_atomic(
            folder / folders.EXTRACTION,
            images=extraction.samples.images,
            prompts=np.asarray(extraction.prompts.prompts, dtype=str),
            source_ids=np.asarray(extraction.prompts.source_ids, dtype=str),
        )
    if open_samples is not None and count:
        folders.write_npz_atomic(
            folder / folders.OPEN_PROMPT_SAMPLES,
            images=open_samples.images[:count],
            prompts=np.asarray(open_samples.prompts[:count], dtype=str),
        )


def geometry_of(split: Any) -> dict[str, int] | None:
    """What a source did to reach the generator's image shape, from its ``info``: a gray
    source (``channels`` 1, stored as three equal channels) or a padded one (``padding``
    pixels each side around ``native_resolution``). None for a plain RGB source."""
    if split.channels == 3 and not split.padding:
        return None
    return {
        "channels": split.channels,
        "native_resolution": split.native_resolution,
        "padding": split.padding,
    }


def write_memorisation_pairs(
    folder: Path, values: list[dict[str, Any]], samples: Any, private: Any
) -> None:
    """Write :data:`MEM_PAIRS` from the first metric value whose artifacts list closest pairs.

    Nothing is written when no value lists any.

    Args:
        folder: the run folder.
        values: the cell's metric values, as dicts.
        samples: the cell's samples (their ``images``), indexed by each pair's ``sample``.
        private: the private split, whose ids each pair's ``private_id`` is looked up in.
    """
    for value in values:
        pairs = (value.get("artifacts") or {}).get("closest_pairs")
        if not pairs:
            continue
        position = {record_id: k for k, record_id in enumerate(private.ids)}
        sample_index = np.asarray([int(p["sample"]) for p in pairs], dtype=np.int64)
        private_index = np.asarray([position[p["private_id"]] for p in pairs], dtype=np.int64)
        folders.write_npz_atomic(
            folder / MEM_PAIRS,
            samples=samples.images[sample_index],
            private=private.images[private_index],
            distances=np.asarray([float(p["d_train"]) for p in pairs], dtype=np.float64),
            metric=np.asarray(value["name"]),
        )
        return
