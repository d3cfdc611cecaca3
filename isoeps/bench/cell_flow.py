"""One cell's flow: build the method, load its public model, fit it through the guard, account
the harness's journal, draw samples, measure, and write the results into the run folder.

:func:`execute` raises for a cell's failure (and :class:`RefusedCell` for a privacy refusal);
:func:`isoeps.bench.runner.run_cell` records either in the folder's ``status.json``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isoeps import registry
from isoeps.accountants.reaccount import reaccount
from isoeps.bench import environment
from isoeps.bench.cells import Cell
from isoeps.bench.prompts import Drawn, Extraction, choose_prompts, prompts_for
from isoeps.bench.spec import RuntimeSpec
from isoeps.errors import PrivacyError
from isoeps.log import get_logger, set_phase
from isoeps.results import artifacts, folders

#: The purpose-seed used to pick prompts: it depends on the cell seed only, so every method
#: and budget of a seed sees the same prompts (and the sample grids line up).
PROMPT_PURPOSE = "evaluation"

log = get_logger(__name__)


class RefusedCell(PrivacyError):
    """The re-accounted epsilon exceeds the cell's target: the cell is not stored."""


def build_method(cell: Cell, *, ctx: Any = None) -> Any:
    """The cell's method, configured as the cell says (the one place a method is built).

    Args:
        cell: the cell.
        ctx: its :class:`~isoeps.methods.base.MethodContext` (default: a quiet CPU one).
    """
    from isoeps.methods.base import MethodContext

    registry.import_modules(cell.imports)
    method_class = registry.get("isoeps.methods", cell.method_name)
    return method_class(cell.method_config, ctx=ctx or MethodContext(show_progress=False))


@dataclass
class Fitted:
    """What a fitted cell carries into sampling and measurement."""

    method: Any
    ctx: Any
    data: Any
    budget: Any
    delta: float
    journal: Any
    privacy: dict[str, Any]
    timings: dict[str, float]


def execute(cell: Cell, folder: Path, runtime: RuntimeSpec) -> None:
    """Run ``cell`` into ``folder`` (which :func:`~isoeps.bench.runner.run_cell` prepared).

    Writes the environment, fits, samples, refuses private access after ``fit``, measures
    every metric and writes the metrics and the kept artefacts. Errors propagate; the caller
    records them.

    Args:
        cell: the cell.
        folder: its run folder.
        runtime: the device and execution settings.
    """
    registry.import_modules(cell.imports)
    env = environment.collect(device=runtime.device)
    folders.write_json_atomic(folder / folders.ENVIRONMENT, env)
    fitted = fit_cell(cell, folder, runtime)
    set_phase("sampling")
    log.info("phase: sampling (%d images)", cell.n_samples)
    started = time.time()
    drawn = draw_samples(cell, fitted)
    fitted.timings["sample_s"] = time.time() - started
    refuse_late_access(cell, folder, fitted)

    from isoeps.bench.measure import measure

    set_phase("metrics")
    log.info("phase: metrics (%s)", ", ".join(cell.metrics))
    values = measure(cell, drawn=drawn, data=fitted.data, device=runtime.device)
    env.update(data_fingerprints=fitted.data.fingerprints(), timings=fitted.timings)
    folders.write_json_atomic(folder / folders.ENVIRONMENT, env)
    provenance = {
        "seed": cell.seed,
        "git_commit": env.get("git_commit"),
        "versions": env.get("versions"),
        "n_samples": cell.n_samples,
    }
    folders.write_json_atomic(
        folder / folders.METRICS,
        {"cell_id": cell.cell_id, "values": values, "provenance": provenance},
    )
    _store(folder, cell, drawn, fitted.data.reference)
    artifacts.write_memorisation_pairs(folder, values, drawn.samples, fitted.data.private)


def fit_cell(
    cell: Cell,
    folder: Path,
    runtime: RuntimeSpec,
    *,
    extend_private: Callable[[Any], Any] | None = None,
    gradient_canaries: Any = None,
) -> Fitted:
    """Public model from the cache, then ``fit`` through a guard the harness closes after.

    Writes ``fit.json``, ``ledger.json`` and ``privacy.json`` into ``folder``.

    Args:
        cell: the cell.
        folder: where its records go.
        runtime: the device.
        extend_private: maps the loaded private split to the one the cell trains on (the
            audit adds its canaries here, before delta, the guard and the ledger see it).
        gradient_canaries: the white-box audit's Dirac canaries, handed to the guard.

    Returns:
        The fitted method with its data, budget, journal and privacy record.

    Raises:
        RefusedCell: the re-accounted ledger is over the target, or shows raw access.
    """
    from isoeps.accountants import Ledger, PrivacyBudget, cell_delta
    from isoeps.bench.data import load_cell_data
    from isoeps.bench.public import prepare_public
    from isoeps.methods.base import MethodContext
    from isoeps.privacy.guard import PrivateData
    from isoeps.privacy.public_only import NoPrivateData

    data = load_cell_data(cell.dataset, validation=needs_validation(cell))
    if extend_private is not None:
        data.private = extend_private(data.private)
    delta = cell_delta(cell.delta_rule, len(data.private))  # stored for inf/public rows too
    budget = PrivacyBudget.parse(cell.budget, delta=delta)
    ctx = MethodContext(
        device=runtime.device, seed=cell.seed, logger=get_logger(f"method.{cell.method_name}")
    )
    method = build_method(cell, ctx=ctx)
    method.check_budget(budget)
    set_phase("public models")
    log.info("phase: public models")
    started = time.time()
    public_key = prepare_public(method, data.public)
    timings = {"public_s": time.time() - started}
    set_phase("fit")
    log.info("phase: fit (budget %s)", cell.budget)
    started = time.time()
    journal = Ledger()  # the harness's record of every release; the method sees copies only
    guard = None
    if budget.mode != "public":
        guard = PrivateData.for_cell(
            data.private,
            mode=budget.mode,
            cell_seed=cell.seed,
            secure=cell.secure,
            ledger=journal,
            gradient_canaries=gradient_canaries,
        )
    try:
        door = NoPrivateData(method=cell.method_name) if guard is None else guard
        report = method.fit(door, budget)
    finally:
        if guard is not None:
            guard.close()  # any later access raises and is recorded in the journal
    timings["fit_s"] = time.time() - started
    folders.write_json_atomic(folder / folders.FIT, _fit_record(report, budget.mode))
    fitted = Fitted(method, ctx, data, budget, delta, journal if guard else None, {}, timings)
    fitted.privacy = _account(cell, folder, fitted, public_key=public_key)
    return fitted


def needs_validation(cell: Cell) -> bool:
    """Whether a metric of ``cell`` reads the sensitive validation split."""
    return any(
        "validation" in getattr(registry.get("isoeps.metrics", name), "needs", ())
        for name in cell.metrics
    )


def _fit_record(report: Any, mode: str) -> dict[str, Any]:
    """``fit.json``: the method's :class:`FitReport`, or a record that it gave none."""
    from isoeps.methods.base import FitReport

    if report is None:
        return {"mode": mode, "reported": False}
    if not isinstance(report, FitReport):
        raise TypeError(f"fit returned {type(report).__name__}; expected a FitReport or None")
    return {**report.to_dict(), "reported": True}


def draw_samples(cell: Cell, fitted: Fitted) -> Drawn:
    """Prompted samples, then open-prompt samples, then extraction samples (last: the only
    draw that sees private captions).

    Args:
        cell: the cell, whose counts say how many of each.
        fitted: what :func:`fit_cell` returned.

    Returns:
        The samples with their prompts.

    Raises:
        ValueError: the method returned the wrong number or size of images.
    """
    method, data = fitted.method, fitted.data
    seed = fitted.ctx.seed_for(PROMPT_PURPOSE)
    prompts = prompts_for(data.reference, n=cell.n_samples, seed=seed)
    samples = method.sample(prompts.prompts, cell.n_samples)
    _check_samples(samples, cell.n_samples, data.reference.resolution)
    open_samples = None
    if cell.open_prompt_samples:
        open_samples = method.sample_unconditional(cell.open_prompt_samples)
        _check_samples(open_samples, cell.open_prompt_samples, data.reference.resolution)
    extraction = None
    if cell.extraction_samples:
        private_prompts = choose_prompts(data.private, n=cell.extraction_samples, seed=seed)
        extraction = Extraction(
            prompts=private_prompts,
            samples=method.sample(private_prompts.prompts, cell.extraction_samples),
        )
    return Drawn(samples=samples, prompts=prompts, extraction=extraction, open_samples=open_samples)


def refuse_late_access(cell: Cell, folder: Path, fitted: Fitted) -> None:
    """A journal that grew after ``fit`` means sampling reached private data: re-account the
    grown journal into ``folder`` and refuse.

    Args:
        cell: the cell.
        folder: its run folder (``ledger.json`` and ``privacy.json`` are rewritten).
        fitted: what :func:`fit_cell` returned, after sampling.

    Raises:
        RefusedCell: the journal grew.
    """
    journal = fitted.journal
    if journal is None or len(journal) == fitted.privacy["ledger_entries"]:
        return
    with contextlib.suppress(RefusedCell):  # the reason below says more
        _account(cell, folder, fitted, public_key=fitted.privacy["public_model_key"])
    raise RefusedCell("the method reached private data after fit returned")


def _account(cell: Cell, folder: Path, fitted: Fitted, *, public_key: str) -> dict[str, Any]:
    """Re-account the harness's journal, write ledger.json and privacy.json, refuse a cell
    over its target (or with raw access, or with nothing recorded in a private cell)."""
    journal = fitted.journal
    privacy = reaccount(
        journal,
        budget=fitted.budget,
        delta=fitted.delta,
        cross_checks=cell.cross_check_accountants,
    )
    privacy.update(
        secure=cell.secure,
        num_private=len(fitted.data.private),
        public_model_key=public_key,
        release="secure run" if cell.secure else "benchmark run, not a DP release",
    )
    if journal is not None:
        folders.write_text_atomic(folder / folders.LEDGER, journal.to_json())
    folders.write_json_atomic(folder / folders.PRIVACY, privacy)
    if privacy["refused"]:
        raise RefusedCell(privacy["refused"])
    return privacy


def _store(folder: Path, cell: Cell, drawn: Drawn, reference: Any) -> None:
    from isoeps.bench.grid import save_grid

    samples = drawn.samples
    artifacts.write_samples(
        folder,
        samples=samples,
        source_ids=drawn.prompts.source_ids,
        labels=drawn.prompts.labels,
        geometry=artifacts.geometry_of(reference),
        keep=cell.store.samples,
        grid_size=cell.store.grid_size,
        extraction=drawn.extraction if cell.store.extraction else None,
        open_samples=drawn.open_samples,
    )
    save_grid(
        folder / folders.GRID,
        samples.images[: cell.store.grid_size],
        samples.eval_captions[: cell.store.grid_size],
        title=f"{cell.method_label} | eps {cell.budget} | seed {cell.seed}",
    )


def _check_samples(samples: Any, n: int, resolution: int) -> None:
    images = samples.images
    if images.shape[0] != n:
        raise ValueError(f"method returned {images.shape[0]} samples, asked for {n}")
    if images.shape[-1] != resolution or images.shape[-2] != resolution:
        raise ValueError(
            f"method returned {images.shape[-2]}x{images.shape[-1]} samples; the data is "
            f"{resolution}x{resolution}"
        )
