"""Public pretraining, cached and shared across budgets and seeds.

The cache key is the method's :meth:`public_cache_key` plus the public split's content
fingerprint. A file lock makes parallel cells (or ``isoeps prepare``) train one model once:
the first takes the lock and trains, the others wait and then load.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from isoeps.cache import cache_path, content_key, file_lock
from isoeps.log import get_logger

log = get_logger("bench.public")

KIND = "public-models"
DONE = "DONE"


def public_key(method: Any, public: Any) -> str:
    return content_key({"method": method.public_cache_key(), "public": public.fingerprint()})


def prepare_public(method: Any, public: Any) -> str:
    """Load the method's public model(s) from the cache, training them first if missing.

    Returns the cache key (recorded in the run folder)."""
    key = public_key(method, public)
    path = cache_path(KIND, key)
    with file_lock(path):
        if not (path / DONE).is_file():
            log.info("pretraining %s on public data (%d images); cache key %s",
                     method.name, len(public), key)
            started = time.time()
            staging = path.with_name(f".{key}.staging")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            method.pretrain_public(public)
            method.save_public(staging)
            (staging / DONE).write_text(f"{time.time() - started:.1f}\n")
            shutil.rmtree(path, ignore_errors=True)
            staging.rename(path)
            return key
    method.load_public(Path(path))
    return key
