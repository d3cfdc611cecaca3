"""The registry, the cache helpers and logging conventions."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from isoeps import cache, registry
from isoeps.errors import UnknownNameError
from isoeps.log import progress_enabled, setup_logging


def test_builtin_methods_are_listed_without_loading():
    names = registry.names("isoeps.methods")
    assert {"wavelet-two-stage", "dpsgd-full-finetune", "dpagg-ti"} <= set(names)


def test_unknown_name_lists_known_ones():
    with pytest.raises(UnknownNameError, match="known: .*dpagg-ti"):
        registry.get("isoeps.methods", "no-such-method")


def test_unknown_group():
    with pytest.raises(UnknownNameError, match="unknown registry group"):
        registry.names("isoeps.nothing")


def test_in_process_registration():
    sentinel = object()
    registry.register("isoeps.trackers", "test-sentinel", sentinel)
    try:
        assert registry.get("isoeps.trackers", "test-sentinel") is sentinel
        assert "test-sentinel" in registry.names("isoeps.trackers")
        with pytest.raises(ValueError, match="already registered"):
            registry.register("isoeps.trackers", "test-sentinel", object())
    finally:
        registry._in_process["isoeps.trackers"].pop("test-sentinel")


def test_import_modules_reports_missing_module():
    with pytest.raises(UnknownNameError, match="no_such_plugin_module"):
        registry.import_modules(["no_such_plugin_module"])


def test_cache_dir_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "x"))
    assert cache.cache_dir() == tmp_path / "x"
    assert cache.cache_path("public-models", "k") == tmp_path / "x" / "public-models" / "k"


def test_content_key_is_order_independent():
    assert cache.content_key({"a": 1, "b": 2}) == cache.content_key({"b": 2, "a": 1})
    assert cache.content_key({"a": 1}) != cache.content_key({"a": 2})


def test_file_sha256_is_the_digest_of_the_bytes(tmp_path):
    import hashlib

    path = tmp_path / "weights.bin"
    path.write_bytes(bytes(range(256)) * 5000)  # more than one 1 MiB read block
    assert cache.file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_file_lock_serialises(tmp_path):
    order: list[str] = []

    def worker(name: str) -> None:
        with cache.file_lock(tmp_path / "model"):
            order.append(f"{name}-in")
            time.sleep(0.05)
            order.append(f"{name}-out")

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Never interleaved: each "in" is followed by its own "out".
    assert order[0][0] == order[1][0] and order[2][0] == order[3][0]


def test_log_level_from_env(monkeypatch):
    monkeypatch.setenv("ISOEPS_LOG_LEVEL", "warning")
    setup_logging(0)
    assert logging.getLogger("isoeps").level == logging.WARNING
    setup_logging(1)
    assert logging.getLogger("isoeps").level == logging.DEBUG


def test_progress_off_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert not progress_enabled()
