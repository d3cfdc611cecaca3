"""Re-verifying stored cells: what ``isoeps results reindex|merge`` and ``isoeps report`` check.

A run folder's ``privacy.json`` is what the runner wrote; anything can have changed it since.
:func:`verify_run` re-accounts the folder's ``ledger.json`` (:func:`isoeps.accountants.reaccount`,
the runner's own definition) at the cell's target (``cell.json``) and delta, and compares the
result with ``privacy.json``: a mismatch, an epsilon over the target, raw access, an empty or
missing ledger in a private cell, or a ledger that does not match the digest written at finish
is reported as the reason the cell cannot be trusted. The results package gets the verdicts
as data (``verify=`` callables) and imports no accountant.

Re-accounting with prv takes about a second per ledger: results are cached in-process by the
ledger's digest, target and delta.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from isoeps.results import folders

#: Relative tolerance between the stored and the re-accounted epsilon (the same accountant on
#: the same ledger is deterministic; this only absorbs library-version noise).
RTOL = 1e-3

_CACHE: dict[tuple[str, float, float], dict[str, Any]] = {}


def _reaccounted(ledger: Any, target: float, delta: float) -> dict[str, Any]:
    from isoeps.accountants import PrivacyBudget, ledger_digest, reaccount

    key = (ledger_digest(ledger), float(target), float(delta))
    if key not in _CACHE:
        _CACHE[key] = reaccount(ledger, budget=PrivacyBudget.private(target, delta), delta=delta)
    return _CACHE[key]


def _mode(budget: str) -> str:
    return budget if budget in ("inf", "public") else "private"


def _close(a: Any, b: Any) -> bool:
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return False
    return math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-9)


class _Untrusted(Exception):
    """A check's one-line reason why a stored cell cannot be trusted."""


def verify_run(folder: Path) -> str | None:
    """None when ``folder``'s privacy record holds (or it is not a finished cell); otherwise
    the reason, one line naming what does not match.

    Args:
        folder: a run folder.

    Returns:
        None, or the reason the cell's privacy record cannot be trusted.
    """
    folder = Path(folder)
    status = folders.status_of(folder)
    if not status or status.get("status") != folders.FINISHED:
        return None
    try:
        _verify_finished(folder)
    except _Untrusted as exc:
        return str(exc)
    return None


def _verify_finished(folder: Path) -> None:
    """Check a finished cell's records against its mode and, for a private cell, its ledger
    re-accounted; raise :class:`_Untrusted` at the first mismatch."""
    cell, privacy = _records(folder)
    mode = _mode(str(cell.get("budget")))
    if privacy.get("mode") != mode:
        raise _Untrusted(
            f"privacy.json says mode {privacy.get('mode')!r}, the cell's budget is "
            f"{cell.get('budget')!r}"
        )
    ledger_path = folder / folders.LEDGER
    if mode == "public":
        if ledger_path.is_file():
            raise _Untrusted("a public cell with a ledger.json (a public cell has no guard)")
        return
    if mode == "inf":
        return  # not DP by design; its rows say so
    ledger = _stored_ledger(ledger_path, privacy)
    target, delta = _target_and_delta(cell, privacy)
    _compare(privacy, _reaccounted(ledger, target, delta))


def _records(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The folder's ``cell.json`` and ``privacy.json``."""
    try:
        cell = folders.read_json(folder / folders.CELL)
        privacy = folders.read_json(folder / folders.PRIVACY)
    except FileNotFoundError as exc:
        raise _Untrusted(f"missing {Path(exc.filename).name}") from None
    except ValueError as exc:
        raise _Untrusted(f"unreadable cell.json or privacy.json: {exc}") from None
    return cell, privacy


def _stored_ledger(ledger_path: Path, privacy: dict[str, Any]) -> Any:
    """The private cell's ledger, present, readable and matching the digest recorded."""
    from isoeps.accountants import Ledger, ledger_digest

    if not ledger_path.is_file():
        raise _Untrusted("no ledger.json in a private cell")
    try:
        ledger = Ledger.from_json(ledger_path.read_text())
    except Exception as exc:  # noqa: BLE001 (any malformed ledger is a reason, not a crash)
        raise _Untrusted(f"unreadable ledger.json: {type(exc).__name__}: {exc}") from None
    digest = privacy.get("ledger_sha256")
    if digest is not None and digest != ledger_digest(ledger):
        raise _Untrusted("ledger.json does not match the digest privacy.json recorded at finish")
    return ledger


def _target_and_delta(cell: dict[str, Any], privacy: dict[str, Any]) -> tuple[float, float]:
    """The cell's target epsilon and delta, each matching what ``privacy.json`` says."""
    from isoeps.accountants import cell_delta

    try:
        target = float(cell["epsilon"] if cell.get("epsilon") is not None else cell["budget"])
    except (KeyError, TypeError, ValueError):
        raise _Untrusted(
            f"cell.json has no epsilon target (budget {cell.get('budget')!r})"
        ) from None
    if not _close(privacy.get("target_epsilon"), target):
        raise _Untrusted(
            f"privacy.json target epsilon {privacy.get('target_epsilon')!r} is not the "
            f"cell's target {target:g}"
        )
    rule = cell.get("delta_rule", "auto")
    try:
        delta = cell_delta(rule, int(privacy["num_private"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise _Untrusted(f"cannot derive the cell's delta ({rule!r}): {exc}") from None
    if not _close(privacy.get("delta"), delta):
        raise _Untrusted(
            f"privacy.json delta {privacy.get('delta')!r} is not the cell's delta {delta:.3g}"
        )
    return target, delta


def _compare(privacy: dict[str, Any], result: dict[str, Any]) -> None:
    """``privacy.json`` against the re-accounted record: refusal, accountant, adjacency and
    epsilon."""
    if result["refused"]:
        raise _Untrusted(f"re-accounted ledger.json: {result['refused']}")
    if privacy.get("accountant") != result["accountant"]:
        raise _Untrusted(
            f"privacy.json names accountant {privacy.get('accountant')!r}; the ledger's "
            f"is {result['accountant']!r}"
        )
    if privacy.get("adjacency") != result["adjacency"]:
        raise _Untrusted(
            f"privacy.json says {privacy.get('adjacency')!r} adjacency; the ledger is "
            f"{result['adjacency']!r}"
        )
    if not _close(privacy.get("epsilon_achieved"), result["epsilon_achieved"]):
        raise _Untrusted(
            f"privacy.json epsilon {privacy.get('epsilon_achieved')!r} differs from the "
            f"re-accounted {result['accountant']} epsilon {result['epsilon_achieved']:.6g}"
        )


def verify_store(store: Path, cell_ids: set[str] | None = None) -> dict[str, dict[str, str]]:
    """cell id -> {"run": folder name, "reason": ...} for every finished cell (of
    ``cell_ids``, default all) whose privacy record does not re-account.

    Folders whose ``cell.json`` cannot be read are skipped.

    Args:
        store: the results store.
        cell_ids: the cells to check; None for all.

    Returns:
        The failing cells, by id.
    """
    bad: dict[str, dict[str, str]] = {}
    for folder in folders.iter_run_dirs(Path(store)):
        try:
            cell_id = folders.read_json(folder / folders.CELL)["cell_id"]
        except (OSError, ValueError, KeyError):
            continue
        if cell_ids is not None and cell_id not in cell_ids:
            continue
        reason = verify_run(folder)
        if reason is not None:
            bad[cell_id] = {"run": folder.name, "reason": reason}
    return bad
