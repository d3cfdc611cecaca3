"""Cache bundles: cached public models and evaluators with model cards, to move and to ship.

A bundle is a folder laid out like the cache (``<kind>/<key>/<files>``) whose every entry
holds a ``card.json``: its kind and key, each file's sha256 and size, the config or key
payload the entry stored, its training time where known, and the code and library versions
that exported it. ``isoeps cache export`` writes one, ``isoeps cache import`` checks every
sha256 and copies the entries in.

The folder :data:`SHIPPED` inside the package is a bundle too: the embedded default's public
models and evaluators, so that a fresh clone's main job trains none of them. A cache miss
looks there first (:func:`seed_from_shipped`). Because an entry's folder name is the content
key of everything it was trained for, a shipped entry is used only by a cell that computes
the very same key; any other cell trains, as without a bundle, and the log says why.

Only kinds that hold public or evaluation artefacts travel (:data:`EXPORTABLE`); the
preprocessed datasets and converted third-party weights are rebuilt where they are needed.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from isoeps.cache import cache_dir, cache_path, file_sha256
from isoeps.errors import ConfigError, DataError
from isoeps.log import get_logger

log = get_logger("cache")

CARD = "card.json"
CARD_FORMAT = 1
#: The kinds a bundle may carry.
EXPORTABLE = ("evaluators", "public-models", "reference-features")
#: The bundle shipped with the package.
SHIPPED = Path(__file__).resolve().parent / "zoo"
#: Set to ``0`` to ignore :data:`SHIPPED` (``isoeps prepare --retrain`` does).
ENV_VAR = "ISOEPS_SHIPPED"
#: JSON files an entry writes about itself, copied into its card (what it was trained for).
_ABOUT_FILES = ("public_key.json", "meta.json", "open_clip_config.json")
_PARTIAL_SUFFIXES = (".partial", ".tmp.npy", ".lock")


def _entry_files(entry: Path) -> list[Path]:
    files = [
        path
        for path in sorted(entry.rglob("*"))
        if path.is_file() and path.name != CARD and not path.name.endswith(_PARTIAL_SUFFIXES)
    ]
    if not files:
        raise DataError(f"{entry}: an empty cache entry")
    return files


def _release() -> str:
    import isoeps

    return isoeps.__version__


def _code_version() -> dict[str, Any]:
    import torch

    version: dict[str, Any] = {"isoeps": _release(), "torch": torch.__version__}
    try:
        commit = subprocess.run(
            ["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = None
    version["git_commit"] = commit
    return version


def make_card(entry: Path, *, kind: str, key: str) -> dict[str, Any]:
    """The card of one cache entry (not written).

    Args:
        entry: the entry's folder.
        kind: its kind, one of :data:`EXPORTABLE`.
        key: its key (the folder's name in the cache).

    Returns:
        The card: kind, key, files with sha256 and bytes, what the entry says it was trained
        for, its training seconds where recorded, the exporter's code version and machine.
    """
    files = _entry_files(entry)
    about = {}
    for name in _ABOUT_FILES:
        if (entry / name).is_file():
            about[name] = json.loads((entry / name).read_text())
    done = entry / "DONE"
    trained_s = float(done.read_text().strip() or "nan") if done.is_file() else None
    return {
        "format": CARD_FORMAT,
        "kind": kind,
        "key": key,
        "files": {
            str(path.relative_to(entry)): {
                "sha256": file_sha256(path),
                "bytes": path.stat().st_size,
            }
            for path in files
        },
        "trained_for": about,
        "training_seconds": trained_s,
        "exported_by": _code_version(),
        "exported_on": {
            "date": datetime.date.today().isoformat(),
            "machine": platform.machine(),
            "python": platform.python_version(),
        },
    }


def read_card(entry: Path) -> dict[str, Any]:
    """An entry's card, checked against the files beside it.

    Raises:
        DataError: the card is missing or not JSON, names another folder, comes from another
            isoeps release, or a file is missing, extra, or differs from its sha256.
    """
    path = entry / CARD
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: missing (every bundle entry has a card)") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not JSON ({err})") from err
    if card.get("format") != CARD_FORMAT or card.get("key") != entry.name:
        raise DataError(
            f"{path}: format {card.get('format')!r} and key {card.get('key')!r}; expected "
            f"format {CARD_FORMAT} and the folder's name {entry.name!r}"
        )
    exported_by = (card.get("exported_by") or {}).get("isoeps")
    if exported_by != _release():
        raise DataError(
            f"{path}: exported by isoeps {exported_by!r}, this is isoeps {_release()!r}; a key "
            "is computed by one release's code, so re-export the entry with this release"
        )
    present = {str(p.relative_to(entry)) for p in _entry_files(entry)}
    listed = set(card.get("files", {}))
    if present != listed:
        raise DataError(
            f"{entry}: files {sorted(present ^ listed)} are on disk or on the card, not both"
        )
    for name, meta in card["files"].items():
        if file_sha256(entry / name) != meta.get("sha256"):
            raise DataError(f"{entry / name}: its sha256 differs from {path}'s")
    return card


def export_entries(
    dest: Path,
    *,
    kinds: Iterable[str] | None = None,
    keys: Iterable[str] | None = None,
    public_metrics: Mapping[str, list[dict[str, Any]]] | None = None,
) -> list[dict[str, Any]]:
    """Copy cache entries with their cards into the bundle folder ``dest``.

    Args:
        dest: the bundle folder (created); an entry already there is replaced if it has a
            card (a folder without one is not isoeps's, and is refused).
        kinds: only these kinds (default: all of :data:`EXPORTABLE`).
        keys: only these keys (default: all).
        public_metrics: the ``public`` cells that ran on each public model, by its key
            (:func:`isoeps.results.public_cells`): each public model's card quotes them.

    Returns:
        The cards written.

    Raises:
        ConfigError: an unknown kind, or a folder without a card where an entry would go.
    """
    kinds = list(kinds or EXPORTABLE)
    wanted = set(keys) if keys is not None else None
    for kind in kinds:
        if kind not in EXPORTABLE:
            raise ConfigError(f"cache export: kind {kind!r} does not travel; {EXPORTABLE}")
    cards = []
    for kind in kinds:
        folder = cache_dir() / kind
        for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
            if not entry.is_dir() or entry.name.startswith(".") or entry.name.endswith(".lock"):
                continue
            if wanted is not None and entry.name not in wanted:
                continue
            card = make_card(entry, kind=kind, key=entry.name)
            if kind == "public-models" and public_metrics is not None:
                card["public_metrics"] = list(public_metrics.get(entry.name, []))
            cards.append(_copy_with_card(entry, dest / kind / entry.name, card=card))
    return cards


def _copy_with_card(entry: Path, target: Path, *, card: dict[str, Any]) -> dict[str, Any]:
    if target.exists() and not (target / CARD).is_file():
        raise ConfigError(
            f"cache export: {target} exists and is not a bundle entry (no {CARD}); isoeps "
            "replaces only entries it exported: choose another bundle folder"
        )
    staging = target.with_name(f".{target.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in card["files"]:
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(entry / name, staging / name)
    (staging / CARD).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    read_card(target)  # the copy is what the card says
    return card


def import_entries(source: Path) -> list[dict[str, Any]]:
    """Check every entry of the bundle ``source`` and copy it into the cache.

    Every card is checked before anything is copied, so a damaged bundle imports nothing.
    Entries already in the cache are kept (they hold the same key, so the same content).

    Returns:
        The cards of the entries copied in.

    Raises:
        DataError: the folder holds no entry, or an entry fails its card (see
            :func:`read_card`).
    """
    entries = [
        (kind, entry)
        for kind in EXPORTABLE
        for entry in sorted((source / kind).iterdir() if (source / kind).is_dir() else [])
        if entry.is_dir() and not entry.name.startswith(".")
    ]
    if not entries:
        raise DataError(f"{source}: no bundle entries (expected {'|'.join(EXPORTABLE)}/<key>/)")
    checked = [(kind, entry, read_card(entry)) for kind, entry in entries]
    copied = []
    for kind, entry, card in checked:
        if _install(entry, card, kind=kind):
            copied.append(card)
    return copied


def _install(entry: Path, card: dict[str, Any], *, kind: str) -> bool:
    target = cache_path(kind, entry.name)
    if target.exists():
        return False
    staging = target.with_name(f".{target.name}.importing")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(entry, staging, ignore=shutil.ignore_patterns(CARD))
    try:
        staging.rename(target)
    except OSError:  # another process installed it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
        return False
    return True


def seed_from_shipped(kind: str, key: str, *, bundle: Path | None = None) -> bool:
    """Copy the shipped entry ``kind/key`` into the cache if there is one and it checks out.

    Call it on a cache miss, before training. Logs the checkpoint it loaded, or why none.

    Args:
        kind: the entry's kind.
        key: the key the caller computed.
        bundle: the bundle to look in (default: :data:`SHIPPED`).

    Returns:
        True when the entry is now in the cache from the bundle.
    """
    if bundle is None:
        if os.environ.get(ENV_VAR, "1") == "0":
            return False
        bundle = SHIPPED
    entry = bundle / kind / key
    if not entry.is_dir():
        shipped = sorted(p.name for p in (bundle / kind).glob("*") if p.is_dir())
        if shipped:
            log.info(
                "no shipped %s checkpoint has key %s (shipped: %s, for other configs or "
                "data): training it",
                kind,
                key,
                ", ".join(shipped),
            )
        return False
    try:
        card = read_card(entry)
    except DataError as err:
        log.warning("shipped checkpoint %s/%s fails its card (%s): training it", kind, key, err)
        return False
    _install(entry, card, kind=kind)
    log.info(
        "loaded the shipped checkpoint %s/%s (exported %s by isoeps %s, commit %s)",
        kind,
        key,
        card["exported_on"]["date"],
        card["exported_by"]["isoeps"],
        (card["exported_by"].get("git_commit") or "unknown")[:12],
    )
    return True
