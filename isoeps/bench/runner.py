"""Run folders around one cell, and the suite loop.

:func:`run_cell` is what a worker runs: it prepares one run folder, runs the cell's flow
(:func:`isoeps.bench.cell_flow.execute`) and never raises for a cell's own failure (the
traceback is recorded in ``status.json``). :func:`run_suite` is the driver: it skips finished
cells (resume), hands the rest to an executor, and alone writes the index.
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isoeps.bench.cell_flow import RefusedCell, build_method, execute
from isoeps.bench.cells import Cell
from isoeps.bench.executors import create_executor
from isoeps.bench.spec import RuntimeSpec, SuiteSpec, dump_suite
from isoeps.log import cell_context, duration_text, get_logger, set_run_eta
from isoeps.results import folders

log = get_logger("bench.runner")


@dataclass
class CellOutcome:
    cell_id: str
    status: str
    run_dir: str
    reason: str | None = None
    wall_time_s: float = 0.0


@dataclass
class SuiteSummary:
    ran: list[CellOutcome] = field(default_factory=list)
    skipped: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed_count(self) -> int:
        return len(self.failed)


# -- the cell's config as a one-cell suite (config.yaml; `isoeps run --from`) ----------------------


def cell_suite(cell: Cell, runtime: RuntimeSpec | None = None) -> SuiteSpec:
    """A suite that expands to exactly ``cell`` (same id): what ``config.yaml`` holds.

    Args:
        cell: the cell.
        runtime: the runtime to record; None for the defaults. Its ``secure`` is the cell's.

    Returns:
        The suite.
    """
    from isoeps.bench.spec import MethodSpec

    return SuiteSpec(
        name=cell.suite,
        imports=cell.imports,
        datasets={cell.dataset_label: cell.dataset},
        methods={cell.method_label: MethodSpec(method=cell.method_name, config=cell.method_config)},
        budgets=[cell.budget if cell.epsilon is None else cell.epsilon],
        delta=cell.delta_rule,
        seeds=[cell.seed],
        n_samples=cell.n_samples,
        extraction_samples=cell.extraction_samples,
        open_prompt_samples=cell.open_prompt_samples,
        metrics=cell.metrics,
        cross_check_accountants=cell.cross_check_accountants,
        store=cell.store,
        runtime=(runtime or RuntimeSpec()).model_copy(update={"secure": cell.secure}),
    )


# -- one cell -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _cell_log(path: Path) -> Iterator[None]:
    """Copy INFO and above to the run folder's log, whatever the console's level (-q/-v)."""
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("isoeps")
    previous = logger.level
    console = [(h, h.level) for h in logger.handlers]
    if previous != logging.NOTSET and previous > logging.INFO:
        for h, _ in console:
            h.setLevel(max(h.level, previous))
        logger.setLevel(logging.INFO)
    elif previous == logging.NOTSET:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
        for h, level in console:
            h.setLevel(level)
        handler.close()


def _fresh_folder(folder: Path) -> None:
    """Start a run folder from scratch: an interrupted or re-run cell leaves nothing behind.

    Only a folder isoeps marked as its own is cleared, and not while another process writes
    it: anything else is refused with a :class:`~isoeps.results.folders.StoreError` naming it.
    """
    folders.fresh_run_dir(folder)


def run_cell(
    cell: Cell,
    *,
    folder: Path,
    runtime: RuntimeSpec | None = None,
    overrides: list[str] | None = None,
    position: str = "",
) -> CellOutcome:
    """Run one cell into ``folder``. A failure is recorded there, not raised.

    Args:
        cell: the cell.
        folder: its run folder; a fresh one is prepared.
        runtime: the device and execution settings; None for the defaults.
        overrides: the dotlist overrides the suite was loaded with, recorded in the folder.
        position: where the cell stands in its run, e.g. ``"3/18"``, for the log.

    Returns:
        The outcome: status (finished, refused or failed), folder, reason and wall time.
    """
    runtime = runtime or RuntimeSpec()
    folder = Path(folder)
    _fresh_folder(folder)
    folders.write_json_atomic(folder / folders.CELL, cell.model_dump(mode="json"))
    folders.write_text_atomic(folder / folders.CONFIG, dump_suite(cell_suite(cell, runtime)))
    folders.write_text_atomic(
        folder / folders.OVERRIDES, "".join(f"{o}\n" for o in overrides or [])
    )
    started = time.time()
    name = f"cell {position + ' ' if position else ''}{cell.method_label} eps={cell.budget} s{cell.seed}"
    with _cell_log(folder / folders.LOG), cell_context(name):
        log.info("cell %s%s: %s", f"{position} " if position else "", cell.cell_id, cell.slug)
        try:
            execute(cell, folder, runtime)
            status, reason, trace = folders.FINISHED, None, None
        except RefusedCell as exc:
            status, reason, trace = folders.REFUSED, str(exc), None
            log.error("cell %s refused: %s", cell.cell_id, exc)
        except Exception as exc:  # noqa: BLE001 (a failing cell must not stop the suite)
            status, reason, trace = (
                folders.FAILED,
                f"{type(exc).__name__}: {exc}",
                traceback.format_exc(),
            )
            log.error("cell %s failed: %s\n%s", cell.cell_id, reason, trace)
    wall = time.time() - started
    folders.write_json_atomic(
        folder / folders.STATUS,
        {
            "status": status,
            "reason": reason,
            "traceback": trace,
            "wall_time_s": wall,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )
    return CellOutcome(cell.cell_id, status, str(folder), reason, wall)


def run_cell_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """Executor entry point (picklable): a JSON cell in, a JSON outcome out."""
    from isoeps.log import setup_logging

    setup_logging(payload.get("verbosity", 0))
    cell = Cell.model_validate(payload["cell"])
    runtime = RuntimeSpec.model_validate(payload["runtime"])
    share_cpu_threads(runtime.jobs)
    outcome = run_cell(
        cell,
        folder=Path(payload["folder"]),
        runtime=runtime,
        overrides=payload.get("overrides"),
        position=payload.get("position", ""),
    )
    return outcome.__dict__


def share_cpu_threads(jobs: int) -> None:
    """Give each of ``jobs`` parallel cells its share of the CPUs this process may use (its
    affinity and cgroup quota, :mod:`isoeps.cpus`; ``OMP_NUM_THREADS`` if the user set it).
    Torch's default counts every core of the machine, which oversubscribes a container or a
    shared allocation and, with parallel cells, was measured here to slow CPU cells down by an
    order of magnitude.

    Args:
        jobs: how many cells run side by side.
    """
    import torch

    from isoeps.cpus import threads_per_process

    torch.set_num_threads(threads_per_process(processes=jobs))


def _record_worker_death(payload: dict[str, Any], error: BaseException) -> dict[str, Any]:
    """The worker process died (killed, out of memory): record the cell as failed.

    Nothing is written into a folder that isoeps does not own or that another process is
    writing (the error then says so: it is the reason, not a dead worker)."""
    folder = Path(payload["folder"])
    if isinstance(error, folders.StoreError):
        return CellOutcome(
            payload["cell"]["cell_id"], folders.FAILED, str(folder), str(error)
        ).__dict__
    reason = f"worker died: {type(error).__name__}: {error}"
    try:
        with folders.claim_run_dir(folder, command="isoeps driver"):
            if not (folder / folders.CELL).is_file():
                folders.write_json_atomic(folder / folders.CELL, payload["cell"])
            folders.write_json_atomic(
                folder / folders.STATUS,
                {"status": folders.FAILED, "reason": reason, "traceback": None, "wall_time_s": 0.0},
            )
    except folders.StoreError as exc:
        reason = f"{reason}; not recorded in the folder: {exc}"
    return CellOutcome(payload["cell"]["cell_id"], folders.FAILED, str(folder), reason).__dict__


# -- the suite loop -------------------------------------------------------------------------------


def plan_status(cells: list[Cell], store: Path) -> dict[str, str]:
    """cell id -> finished | failed | refused | incomplete | new.

    Args:
        cells: the cells.
        store: the results store.

    Returns:
        The status of each cell, by id.
    """
    out = {}
    for cell in cells:
        folder = folders.find_run(store, cell.cell_id)
        status = folders.status_of(folder) if folder else None
        out[cell.cell_id] = status["status"] if status else ("incomplete" if folder else "new")
    return out


def public_family(cell: Cell) -> tuple[str, str]:
    """(dataset, public-model key): cells that share a cached public model."""
    from isoeps.cache import content_key

    return cell.dataset_label, content_key(build_method(cell).public_cache_key())


def interleave_families(
    cells: list[Cell], *, family: Callable[[Cell], Any] = public_family
) -> list[Cell]:
    """Round-robin over public-model families, so that parallel workers start on different
    public models (each trains its own while the others train theirs) instead of queueing on
    one model's lock. Results do not depend on the order.

    Args:
        cells: the cells.
        family: the key of a cell's public-model family.

    Returns:
        The same cells, reordered.
    """
    groups: dict[Any, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(family(cell), []).append(cell)
    queues = list(groups.values())
    ordered = []
    while queues:
        ordered += [queue.pop(0) for queue in queues]
        queues = [queue for queue in queues if queue]
    return ordered


def run_suite(
    cells: list[Cell],
    *,
    store: Path,
    runtime: RuntimeSpec,
    overrides: list[str] | None = None,
    force: bool = False,
    rerun_failed: bool = False,
    executor: Any = None,
    on_outcome: Callable[[CellOutcome], None] | None = None,
    verbosity: int = 0,
) -> SuiteSummary:
    """Run every cell that is not finished; the driver alone updates the index.

    Args:
        cells: the suite's cells.
        store: the store folder.
        runtime: the runtime settings (executor, trackers, ...).
        overrides: the dotlist overrides the cells were expanded with (recorded per cell).
        force: run finished cells again too.
        rerun_failed: run failed and refused cells again.
        executor: the executor (default: the runtime's).
        on_outcome: called with each cell's outcome as it ends.
        verbosity: the workers' log verbosity.

    Returns:
        The outcomes of the cells that ran, the count skipped and the failed or refused cells.
    """
    store = Path(store)
    summary = SuiteSummary()
    todo, summary.skipped = _cells_to_run(cells, store, force=force, rerun_failed=rerun_failed)
    executor = executor or create_executor(runtime)
    payloads = [
        {
            "cell": c.model_dump(mode="json"),
            "folder": str(folders.run_dir(store, c.slug)),
            "runtime": runtime.model_dump(mode="json"),
            "overrides": overrides or [],
            "verbosity": verbosity,
            "position": f"{i}/{len(todo)}",
        }
        for i, c in enumerate(todo, start=1)
    ]
    from isoeps.bench.trackers import create_trackers

    trackers = create_trackers(
        runtime.trackers,
        directory=store,
        project=f"isoeps-{cells[0].suite}" if cells else "isoeps",
        upload=runtime.tracker_upload,
    )
    summary.ran = _collect(executor, payloads, store, trackers, on_outcome)
    summary.failed = _failed_cells(cells, store)
    return summary


def _cells_to_run(
    cells: list[Cell], store: Path, *, force: bool, rerun_failed: bool
) -> tuple[list[Cell], int]:
    """The cells to run (new, incomplete, failed with ``rerun_failed``, all with ``force``),
    families interleaved, and how many were skipped."""
    statuses = plan_status(cells, store)
    todo = []
    skipped = 0
    for cell in cells:
        status = statuses[cell.cell_id]
        if (
            force
            or status in ("new", "incomplete")
            or (rerun_failed and status in (folders.FAILED, folders.REFUSED))
        ):
            todo.append(cell)
        else:
            skipped += 1
    return interleave_families(todo), skipped


def _collect(
    executor: Any,
    payloads: list[dict[str, Any]],
    store: Path,
    trackers: list[Any],
    on_outcome: Callable[[CellOutcome], None] | None,
) -> list[CellOutcome]:
    """Run the payloads on the executor; index, track and report each outcome as it ends."""
    from isoeps.log import progress
    from isoeps.results import index

    ran = []
    started = time.time()
    bar = progress(total=len(payloads), desc="cells", unit="cell", log_off_terminal=False)
    try:
        for payload, result in executor.map(run_cell_payload, payloads):
            if isinstance(result, BaseException):
                result = _record_worker_death(payload, result)
            outcome = CellOutcome(**result)
            index.update(store, Path(outcome.run_dir))
            ran.append(outcome)
            bar.update(1)
            elapsed = time.time() - started
            log.info(progress_line(ran, total=len(payloads), elapsed=elapsed))
            set_run_eta(time_left(ran, total=len(payloads), elapsed=elapsed))
            for tracker in trackers:
                tracker.log_cell(Path(outcome.run_dir))
            if on_outcome:
                on_outcome(outcome)
    finally:
        set_run_eta("")
        bar.close()
        for tracker in trackers:
            tracker.close()
    return ran


def progress_line(done: list[CellOutcome], *, total: int, elapsed: float) -> str:
    """How far the run is, for the log: cells done of the total, by status, and an ETA.

    Args:
        done: the outcomes so far.
        total: the cells this run executes.
        elapsed: seconds since the run's first cell started.

    Returns:
        e.g. ``"cells 3/18 done (3 finished), 21 min elapsed, about 1 h 45 min left"``; the
        ETA is the elapsed time per cell so far times the cells left (cells run side by side
        with ``--jobs`` are counted in it).
    """
    counts: dict[str, int] = {}
    for outcome in done:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    statuses = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    line = f"cells {len(done)}/{total} done ({statuses}), {duration_text(elapsed)} elapsed"
    left = time_left(done, total=total, elapsed=elapsed)
    return f"{line}, {left}" if left else line


def time_left(done: list[CellOutcome], *, total: int, elapsed: float) -> str:
    """``"about 20 min left"`` from the elapsed time per finished cell, or ``""`` when no cell
    has ended yet or none is left."""
    left = total - len(done)
    if not done or not left:
        return ""
    return f"about {duration_text(elapsed / len(done) * left)} left"


def _failed_cells(cells: list[Cell], store: Path) -> list[dict[str, Any]]:
    """The cells whose run folder records a failure or a refusal, with the reason."""
    failed = []
    for cell in cells:
        folder = folders.find_run(store, cell.cell_id)
        status = folders.status_of(folder) if folder else None
        if status and status["status"] in (folders.FAILED, folders.REFUSED):
            failed.append(
                {
                    "cell_id": cell.cell_id,
                    "slug": cell.slug,
                    "status": status["status"],
                    "reason": status.get("reason"),
                }
            )
    return failed
