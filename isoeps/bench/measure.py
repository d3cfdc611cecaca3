"""Running a cell's metrics with full provenance."""

from __future__ import annotations

import resource
import time
from typing import Any

from isoeps import registry
from isoeps.bench.prompts import Drawn
from isoeps.log import get_logger

log = get_logger("bench.measure")


def _peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(
    cell: Any,
    *,
    drawn: Drawn,
    data: Any,
    device: str,
) -> list[dict[str, Any]]:
    """Evaluate every metric of ``cell``; each value carries its provenance.

    Metrics that read the private split (memorisation, style capture) are marked ``not_dp``:
    they look at training data after the release and are not part of the DP guarantee.

    Args:
        cell: the cell, whose ``metrics`` say what to evaluate.
        drawn: the samples drawn for it.
        data: the cell's splits.
        device: where the metrics run.

    Returns:
        One dict per metric value.
    """
    from isoeps.bench.cells import make_metric

    inputs = _metric_inputs(cell, drawn=drawn, data=data, device=device)
    values: list[dict[str, Any]] = []
    for name, options in cell.metrics.items():
        metric_class = registry.get("isoeps.metrics", name)
        metric = make_metric(name, options)
        needs = getattr(metric_class, "needs", frozenset())
        # The sensitive validation split is private data too (DPImageBench's epoch selection).
        reads_private = bool({"private", "validation"} & needs)
        started = time.time()
        results = metric.evaluate(_inputs_for(inputs, needs))
        wall = time.time() - started
        log.info(
            "metric %s: %s (%.1fs)",
            name,
            ", ".join(f"{v.name}={v.value:.4g}" for v in results),
            wall,
        )
        for value in results:
            row = value.to_dict()
            row.update(
                metric=name,
                options=options,
                # A metric may say per value whether it read the private split.
                not_dp=reads_private if value.reads_private is None else value.reads_private,
                resize=value.resize_mode,
                wall_time_s=wall,
                peak_memory_mb=_peak_memory_mb(device),
            )
            values.append(row)
    return values


def _metric_inputs(cell: Any, *, drawn: Drawn, data: Any, device: str) -> Any:
    """Everything any metric of the cell may read (each gets only what it ``needs``)."""
    from isoeps.metrics.base import MetricInputs

    extraction, open_samples = drawn.extraction, drawn.open_samples
    return MetricInputs(
        fake=drawn.samples.images,
        fake_captions=list(drawn.samples.eval_captions),
        reference=data.reference,
        fake_attributes=drawn.prompts.attributes,
        fake_prompt_source_ids=drawn.prompts.source_ids,
        eval=data.eval,
        private=data.private,
        extraction=extraction.samples.images if extraction else None,
        extraction_source_ids=extraction.prompts.source_ids if extraction else None,
        open_prompt=open_samples.images if open_samples is not None else None,
        validation=getattr(data, "validation", None),
        epsilon=cell.nominal_epsilon,
        seed=cell.seed,
        device=device,
    )


def _inputs_for(inputs: Any, needs: frozenset[str]) -> Any:
    """What one metric may read: the private split and the samples drawn from private
    captions only when its ``needs`` declare them (its values are then marked not-DP)."""
    import dataclasses

    hidden: dict[str, Any] = {}
    if "private" not in needs:
        hidden["private"] = None
    if "extraction" not in needs:
        hidden.update(extraction=None, extraction_source_ids=None)
    if "validation" not in needs:
        hidden["validation"] = None
    return dataclasses.replace(inputs, **hidden) if hidden else inputs
