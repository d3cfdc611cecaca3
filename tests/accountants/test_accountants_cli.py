"""``isoeps privacy epsilon|calibrate``: JSON output, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from isoeps.cli.main import main

BASE = ["--sample-rate", "0.02", "--steps", "200", "--delta", "1e-5"]


def test_epsilon_json_all(capsys):
    code = main(["privacy", "epsilon", "--noise-multiplier", "1.5", *BASE, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(out["epsilon"]) == {"prv", "pld", "rdp"}
    assert out["delta"] == 1e-5 and out["noise_multiplier"] == 1.5
    assert out["epsilon"]["rdp"] >= out["epsilon"]["prv"] > 0


def test_epsilon_single_accountant_q1(capsys):
    args = ["--noise-multiplier", "2", "--sample-rate", "1", "--steps", "1", "--delta", "1e-5"]
    code = main(["privacy", "epsilon", *args, "--accountant", "pld", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and list(out["epsilon"]) == ["pld"] and out["epsilon"]["pld"] > 0


def test_calibrate_json(capsys):
    code = main(["privacy", "calibrate", "--epsilon", "3", *BASE, "--accountant", "rdp", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(out["epsilon"]) == {"prv", "pld", "rdp"}
    assert 2.97 <= out["epsilon"]["rdp"] <= 3.0
    assert out["accountant"] == "rdp"
    assert out["epsilon"]["prv"] < out["epsilon"]["rdp"]  # PRV is tighter than RDP
    assert out["noise_multiplier"] > 0


@pytest.mark.parametrize(
    "argv,named",
    [
        (["calibrate", "--epsilon", "0", *BASE], "'0'"),
        (["calibrate", "--epsilon", "nan", *BASE], "'nan'"),
        (["calibrate", "--epsilon", "-2", *BASE], "'-2'"),
        (
            [
                "calibrate",
                "--epsilon",
                "1",
                "--sample-rate",
                "0",
                "--steps",
                "5",
                "--delta",
                "1e-5",
            ],
            "--sample-rate",
        ),
        (
            [
                "calibrate",
                "--epsilon",
                "1",
                "--sample-rate",
                "1.5",
                "--steps",
                "5",
                "--delta",
                "1e-5",
            ],
            "'1.5'",
        ),
        (
            [
                "calibrate",
                "--epsilon",
                "1",
                "--sample-rate",
                "0.1",
                "--steps",
                "0",
                "--delta",
                "1e-5",
            ],
            "--steps",
        ),
        (
            ["calibrate", "--epsilon", "1", "--sample-rate", "0.1", "--steps", "5", "--delta", "1"],
            "--delta",
        ),
        (["epsilon", "--noise-multiplier", "0", *BASE], "--noise-multiplier"),
        (["epsilon", "--noise-multiplier", "1", *BASE, "--accountant", "foo"], "'foo'"),
        (["calibrate", "--epsilon", "1", *BASE, "--accountant", "all"], "'all'"),
        (
            [
                "calibrate",
                "--epsilon",
                "0.001",
                *BASE,
                "--accountant",
                "rdp",
                "--max-noise-multiplier",
                "2",
            ],
            "unreachable",
        ),
    ],
)
def test_bad_input_exit_2_one_line(capsys, argv, named):
    code = main(["privacy", *argv])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and named in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""


def test_subprocess_no_traceback_and_json_stdout():
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "isoeps.cli.main",
            "privacy",
            "calibrate",
            "--epsilon",
            "nan",
            *BASE,
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "nan" in bad.stderr
    good = subprocess.run(
        [
            sys.executable,
            "-m",
            "isoeps.cli.main",
            "privacy",
            "epsilon",
            "--noise-multiplier",
            "1",
            *BASE,
            "--accountant",
            "rdp",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(good.stdout)["epsilon"]["rdp"] > 0


ISSUE = ["--sample-rate", "0.1", "--steps", "10", "--delta", "1e-5"]


def test_issue13_epsilon_small_sigma_no_traceback():
    """Issue 13 item 4: `privacy epsilon --noise-multiplier 0.3 ...` ended in a traceback."""
    run = subprocess.run(
        [sys.executable, "-m", "isoeps.cli.main", "privacy", "epsilon"]
        + ["--noise-multiplier", "0.3", *ISSUE, "--accountant", "prv", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0 and "Traceback" not in run.stderr
    out = json.loads(run.stdout)
    assert "failed" not in out
    assert 35.6 <= out["epsilon"]["prv"] <= 35.9  # dp-accounting's pld: 35.66


def _break_prv(monkeypatch):
    from isoeps.accountants.backends import prv as backend

    def broken(*args, **kwargs):
        raise RuntimeError("Discrete mean differs from continuous mean significantly.")

    monkeypatch.setattr(backend, "_library_epsilon", broken)


@pytest.mark.parametrize(
    "argv,named",
    [
        (["epsilon", "--noise-multiplier", "0.3", *ISSUE, "--accountant", "prv"], "Discrete mean"),
        (["calibrate", "--epsilon", "20", *ISSUE], "cannot be reached within rtol"),
    ],
)
def test_prv_failure_exit_2_one_line(monkeypatch, capsys, argv, named):
    _break_prv(monkeypatch)
    code = main(["privacy", *argv])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "prv" in lines[0]


def test_prv_failure_all_labels_the_fallback(monkeypatch, capsys):
    _break_prv(monkeypatch)
    code = main(["privacy", "epsilon", "--noise-multiplier", "1", *ISSUE, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["epsilon"]["prv"] is None and out["fallback"] == "pld"
    assert "Discrete mean" in out["failed"]["prv"] and out["epsilon"]["pld"] > 0
    code = main(["privacy", "epsilon", "--noise-multiplier", "1", *ISSUE])
    text = capsys.readouterr().out
    assert code == 0
    assert "prv  epsilon = unavailable" in text and "pld (fallback) stands in" in text
    assert "(fallback for prv)" in text
