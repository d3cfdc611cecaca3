"""The on-disk cache of preprocessed image tensors.

An entry is keyed by: dataset, SPLIT, the ordered item ids, each image file's signature (size
and mtime, or its bytes with ``cache_key: content``), the content of the annotation files,
the resolution, the resize mode and the unreadable-image policy. The entry also stores its
split and ids, and a read checks them, so one split's tensors are never served for another even
if two keys collided. Writes go to a temp file in the same folder, then an atomic rename.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from isoeps.cache import cache_path, content_key, file_lock
from isoeps.log import get_logger

log = get_logger(__name__)
KIND = "datasets"
FORMAT_VERSION = 1
Built = tuple[np.ndarray, list[int], list[str]]


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files_signature(files: Sequence[Path], *, mode: str) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path).encode() + b"\0")
        try:
            if mode == "content":
                digest.update(_file_digest(path).encode())
            else:
                stat = path.stat()
                digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
        except OSError:
            digest.update(b"missing")
    return digest.hexdigest()


def _ids_digest(ids: Sequence[str]) -> str:
    return hashlib.sha256("\0".join(ids).encode()).hexdigest()


def entry_key(
    *,
    dataset: str,
    split: str,
    ids: Sequence[str],
    files: Sequence[Path],
    key_files: Sequence[Path],
    resolution: int,
    resize: str,
    on_error: str,
    file_key: str,
) -> str:
    """The cache key of one split's tensors (see the module docstring for what it covers).

    Args:
        dataset: the source's name.
        split: the split.
        ids: the item ids, in order.
        files: each item's image file, in the same order.
        key_files: annotation files whose content is part of the key (missing ones count
            as such).
        resolution: side length of the images, in pixels.
        resize: the resize policy.
        on_error: the unreadable-image policy (``fail`` or ``skip``).
        file_key: ``stat`` (size and mtime) or ``content`` (the bytes) for ``files``.

    Returns:
        A 24-character hex key.
    """
    return content_key(
        {
            "version": FORMAT_VERSION,
            "dataset": dataset,
            "split": split,
            "ids": _ids_digest(ids),
            "files": _files_signature(files, mode=file_key),
            "key_files": [(str(p), _file_digest(p) if p.is_file() else None) for p in key_files],
            "resolution": resolution,
            "resize": resize,
            "on_error": on_error,
        },
        length=24,
    )


def get_or_build(
    *,
    dataset: str,
    split: str,
    ids: Sequence[str],
    files: Sequence[Path],
    key_files: Sequence[Path],
    resolution: int,
    resize: str,
    on_error: str,
    file_key: str,
    build: Callable[[], Built],
) -> Built:
    """The cached tensors for this exact input, building and storing them on a miss.

    Args:
        dataset: the source's name.
        split: the split.
        ids: the item ids, in order.
        files: each item's image file, in the same order.
        key_files: annotation files whose content is part of the key.
        resolution: side length of the images, in pixels.
        resize: the resize policy.
        on_error: the unreadable-image policy (``fail`` or ``skip``).
        file_key: ``stat`` or ``content``, for ``files``.
        build: decodes the split on a miss.

    Returns:
        ``(images, kept, skipped)``: the images, the positions of the items kept and the
        messages of those skipped, from the cache or from ``build``.
    """
    key = entry_key(
        dataset=dataset,
        split=split,
        ids=ids,
        files=files,
        key_files=key_files,
        resolution=resolution,
        resize=resize,
        on_error=on_error,
        file_key=file_key,
    )
    folder = cache_path(KIND, key)
    target = folder / "tensors.npz"
    with file_lock(folder):
        hit = _read(target, split=split, ids=ids)
        if hit is not None:
            log.debug("%s/%s: %d tensors from cache %s", dataset, split, len(hit[1]), key)
            return hit
        built = build()
        _write(target, split=split, ids=ids, built=built)
        return built


def _read(target: Path, *, split: str, ids: Sequence[str]) -> Built | None:
    if not target.is_file():
        return None
    try:
        with np.load(target, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta["split"] != split or meta["ids"] != _ids_digest(ids):
                log.warning("cache entry %s belongs to another split or items; rebuilding", target)
                return None
            return data["images"], data["kept"].tolist(), list(meta["skipped"])
    except (OSError, ValueError, KeyError) as exc:
        log.warning("unreadable cache entry %s (%s); rebuilding", target, exc)
        return None


def _write(target: Path, *, split: str, ids: Sequence[str], built: Built) -> None:
    images, kept, skipped = built
    target.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"split": split, "ids": _ids_digest(ids), "skipped": skipped})
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(
                handle, images=images, kept=np.asarray(kept, dtype=np.int64), meta=np.array(meta)
            )
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
