"""A suite's audited runs: which cells its ``audit:`` block (or ``isoeps audit``) audits, each
run into ``<store>/audits/<kind>/<slug>/`` and indexed.

An audited run never replaces, reads or is read as its cell's unaudited run: it has its own
folder (with isoeps's run-folder marker, so a rerun clears only what isoeps wrote), its own
private split (the canaries are in it), its own ledger, and the index keeps its bound in the
``audits`` table, never among the metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isoeps.bench.cells import Cell
from isoeps.bench.spec import AuditSpec, RuntimeSpec, budget_label
from isoeps.log import get_logger
from isoeps.results import folders, index

log = get_logger("bench.audit_runs")


@dataclass(frozen=True)
class AuditedRun:
    """One audited run: the cell, the kind, its folder, whether it ran now, and its
    ``audit.json`` (None when it failed: ``error`` says why)."""

    cell: Cell
    kind: str
    folder: Path
    ran: bool
    result: dict[str, Any] | None
    error: str | None = None


def audited_cells(cells: list[Cell], audit: AuditSpec) -> list[Cell]:
    """The cells ``audit`` selects: every non-public cell of its budgets, methods and seeds.

    Args:
        cells: the suite's cells.
        audit: the audit block.

    Returns:
        The selected cells, in suite order (``public`` cells are never selected).
    """
    budgets = None if audit.budgets is None else {budget_label(b) for b in audit.budgets}
    return [
        c
        for c in cells
        if c.budget != "public"
        and (budgets is None or c.budget in budgets)
        and (audit.methods is None or c.method_label in audit.methods)
        and (audit.seeds is None or c.seed in audit.seeds)
    ]


def settings_for(audit: AuditSpec, kind: str) -> Any:
    """The :class:`~isoeps.bench.audit.AuditSettings` of one kind of ``audit``'s runs."""
    from isoeps.bench.audit import AuditSettings

    settings = AuditSettings(
        m=audit.m,
        k=audit.k,
        beta=audit.beta,
        samples_per_canary=audit.samples_per_canary,
        open_samples=audit.open_samples,
        kind=kind,
    )
    settings.check()
    return settings


def run_audits(
    cells: list[Cell],
    *,
    store: Path,
    runtime: RuntimeSpec,
    audit: AuditSpec,
    force: bool = False,
    on_run: Callable[[AuditedRun], None] | None = None,
) -> list[AuditedRun]:
    """Audit every cell ``audit`` selects, once per kind; a finished audit is kept unless
    ``force``. The driver calls this (it alone writes the index).

    Args:
        cells: the suite's cells (the selection is :func:`audited_cells`).
        store: the results store; the runs go to ``<store>/audits/<kind>/<slug>``.
        runtime: the device and execution settings.
        audit: the audit block.
        force: audit again cells that have an audit of that kind.
        on_run: called with each audited run as it ends.

    Returns:
        Every selected (cell, kind), run now or found finished.

    Raises:
        AuditError: bad settings (before any audit runs). A cell's own failure (m larger than
            its private split, a refused ledger, an error in the method) is recorded in its
            :class:`AuditedRun` instead, and the other audits go on.
        StoreError: an audit folder exists that isoeps did not write.
    """
    settings = {kind: settings_for(audit, kind) for kind in audit.kinds}  # bad ones fail first
    done = []
    for cell in audited_cells(cells, audit):
        for kind in audit.kinds:
            folder = folders.audit_dir(store, cell.slug, kind=kind)
            finished = (folder / folders.AUDIT).is_file()
            audited = (
                _audit_one(cell, kind, folder, store, runtime, settings[kind])
                if force or not finished
                else AuditedRun(
                    cell, kind, folder, False, folders.read_json(folder / folders.AUDIT)
                )
            )
            if on_run is not None:
                on_run(audited)
            done.append(audited)
    return done


def _audit_one(
    cell: Cell, kind: str, folder: Path, store: Path, runtime: RuntimeSpec, settings: Any
) -> AuditedRun:
    """Run one audit into a fresh ``folder`` and index it; a failure is returned, not raised
    (the suite's other audits, and its cells, are kept)."""
    from isoeps.bench.audit import run_audit

    log.info("audit (%s): %s", kind, cell.slug)
    folders.fresh_run_dir(folder)  # only a folder isoeps marked is cleared
    try:
        with folders.claim_run_dir(folder, command="isoeps audit"):
            folders.write_json_atomic(folder / folders.CELL, cell.model_dump(mode="json"))
            run_audit(cell, folder, runtime, settings=settings)
    except folders.StoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded in the outcome; the others go on
        log.error("audit (%s) of %s failed: %s", kind, cell.slug, exc)
        return AuditedRun(cell, kind, folder, True, None, f"{type(exc).__name__}: {exc}")
    index.update_audit(store, folder)
    return AuditedRun(cell, kind, folder, True, folders.read_json(folder / folders.AUDIT))


def audit_line(run: AuditedRun) -> str:
    """One line per audited run: the bound beside the target, the guesses and the setting."""
    r = run.result
    if r is None:
        return f"{run.cell.slug} ({run.kind}): FAILED: {run.error}"
    target = "inf" if r.get("target_epsilon") is None else f"{r['target_epsilon']:g}"
    return (
        f"{run.cell.slug} ({run.kind}): epsilon_lower={r['epsilon_lower']:.3f} (target {target},"
        f" m={r['m']}, k={r['k']}, beta={r['beta']:g}, {r['correct']}/{2 * r['k']} right)"
        + ("" if run.ran else " [kept]")
    )


def violations(runs: list[AuditedRun]) -> list[AuditedRun]:
    """The audited runs whose bound exceeds their target epsilon: a privacy bug."""
    return [
        r
        for r in runs
        if r.result is not None
        and r.result.get("target_epsilon") is not None
        and r.result["epsilon_lower"] > r.result["target_epsilon"]
    ]
