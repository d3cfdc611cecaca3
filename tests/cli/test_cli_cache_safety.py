"""`isoeps cache clear` deletes only a cache isoeps marked, only known kinds, and asks first
(issue 13, item 7)."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from isoeps import cache
from isoeps.cli.main import main


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("ISOEPS_CACHE_DIR", str(root))
    cache.cache_dir()  # created, so marked, by isoeps
    (root / "public-models" / "abc").mkdir(parents=True)
    (root / "public-models" / "abc" / "w.bin").write_bytes(b"x" * 1000)
    return root


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_kind_must_be_a_known_one(cache_root, tmp_path, capsys):
    outside = tmp_path / "x"
    outside.mkdir()
    (outside / "mine.txt").write_text("keep me")
    for kind in ("../x", "/", "..", "public-models/abc", "no-such-kind"):
        assert main(["cache", "clear", "--kind", kind, "--yes"]) == 2, kind
        assert "unknown cache kind" in capsys.readouterr().err
    assert (outside / "mine.txt").read_text() == "keep me"
    assert (cache_root / "public-models" / "abc" / "w.bin").is_file()
    assert main(["cache", "clear", "--kind", "public-models", "--yes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"freed_bytes": 1000}
    assert not (cache_root / "public-models").exists()


def test_a_folder_isoeps_did_not_create_is_never_emptied(tmp_path, monkeypatch, capsys):
    documents = tmp_path / "Documents"
    (documents / "taxes").mkdir(parents=True)
    (documents / "taxes" / "2024.pdf").write_bytes(b"%PDF")
    monkeypatch.setenv("ISOEPS_CACHE_DIR", str(documents))  # a typo for the cache folder
    assert main(["cache", "clear", "--yes"]) == 2
    err = capsys.readouterr().err
    assert "was not created by isoeps" in err and str(documents) in err
    assert (documents / "taxes" / "2024.pdf").read_bytes() == b"%PDF"
    assert not (documents / cache.MARKER).exists()


def test_clear_without_a_terminal_needs_yes(cache_root):
    result = subprocess.run(
        [sys.executable, "-m", "isoeps.cli.main", "cache", "clear"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "--yes" in result.stderr and "Traceback" not in result.stderr
    assert (cache_root / "public-models" / "abc" / "w.bin").is_file()


def test_clear_at_a_terminal_asks(cache_root, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
    assert main(["cache", "clear"]) == 1
    assert "Continue? [y/N]" in capsys.readouterr().err
    assert (cache_root / "public-models" / "abc" / "w.bin").is_file()
    monkeypatch.setattr(sys, "stdin", _Terminal("y\n"))
    assert main(["cache", "clear"]) == 0
    assert not (cache_root / "public-models").exists()
    assert (cache_root / cache.MARKER).is_file()  # still isoeps's root


def test_cache_path_rejects_paths_as_names(cache_root):
    from isoeps.errors import ConfigError

    for kind, key in (("..", "k"), ("a/b", "k"), ("public-models", "../../x")):
        with pytest.raises(ConfigError, match="plain folder name"):
            cache.cache_path(kind, key)


def test_cache_export_then_import_moves_an_entry_with_its_card(cache_root, tmp_path, monkeypatch):
    bundle = tmp_path / "bundle"
    assert main(["cache", "export", str(bundle), "--kind", "public-models"]) == 0
    card = json.loads((bundle / "public-models" / "abc" / "card.json").read_text())
    assert set(card["files"]) == {"w.bin"}
    assert main(["cache", "export", str(bundle), "--key", "nope"]) == 2
    assert main(["cache", "export", str(bundle), "--kind", "weights"]) == 2

    monkeypatch.setenv("ISOEPS_CACHE_DIR", str(tmp_path / "other"))
    (bundle / "public-models" / "abc" / "w.bin").write_bytes(b"y" * 1000)
    assert main(["cache", "import", str(bundle)]) == 2  # fails its sha256
    assert not (tmp_path / "other" / "public-models" / "abc").exists()
    (bundle / "public-models" / "abc" / "w.bin").write_bytes(b"x" * 1000)
    assert main(["cache", "import", str(bundle)]) == 0
    assert (tmp_path / "other" / "public-models" / "abc" / "w.bin").read_bytes() == b"x" * 1000
