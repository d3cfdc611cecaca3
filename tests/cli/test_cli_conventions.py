"""One spelling per CLI concept (old ones kept, hidden), and overrides anywhere on the line."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from isoeps.cli import _common
from isoeps.cli.main import build_parser, command_parsers, parse

CLI = Path(_common.__file__).parent


def _parse(*argv: str) -> argparse.Namespace:
    return parse(build_parser(), list(argv))


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "smoke", "--results", "R"],
        ["report", "--results", "R"],
        ["regress", "--baseline", "b.json", "--results", "R"],
        ["compare", "a", "b", "--metric", "kid", "--results", "R"],
        ["results", "reindex", "--results", "R"],
        ["results", "merge", "other", "--results", "R"],
        ["results", "export", "--format", "csv", "--results", "R"],
        ["cell", "--suite", "smoke", "--id", "x", "--results", "R"],
    ],
)
def test_every_command_with_a_store_calls_it_results(argv):
    assert _parse(*argv).results == "R"


def test_the_sample_count_is_n_everywhere():
    assert _parse("cell", "--n", "5").n_samples == 5
    assert _parse("cell").n_samples == 64
    assert _parse("metrics", "compute", "--real", "a", "--fake", "b", "--n", "7").n == 7
    assert _parse("data", "inspect", "synthetic-faces", "--n", "9").n == 9


def test_the_old_sample_spelling_still_works_hidden_and_deprecated(capsys):
    assert _parse("cell", "--n-samples", "7").n_samples == 7
    assert "--n-samples is deprecated; use --n" in capsys.readouterr().err
    help_text = command_parsers()["cell"].format_help()
    assert "--n N" in help_text and "--n-samples" not in help_text


def test_ci_and_readme_spellings_parse():
    run = _parse("run", "smoke", "--results", "results-smoke", "--reports", "reports/smoke")
    assert (run.items, run.results, run.reports) == (["smoke"], "results-smoke", "reports/smoke")
    regress = _parse("regress", "--baseline", "benchmarks/baselines/smoke.json", "--results", "r")
    assert (regress.baseline, regress.results) == ("benchmarks/baselines/smoke.json", "r")
    cell = _parse("cell", "--method", "m", "--dataset", "d", "--epsilon", "1", "--out", "DIR")
    assert (cell.method, cell.dataset, cell.epsilon, cell.out) == ("m", "d", "1", "DIR")


@pytest.mark.parametrize(
    ("argv", "items", "sets"),
    [
        (["run"], [], []),
        (["run", "quick", "seeds=[0,1,2,3,4]"], ["quick", "seeds=[0,1,2,3,4]"], []),
        (["run", "quick", "--jobs", "2", "seeds=[0,1]"], ["quick", "seeds=[0,1]"], []),
        (["run", "--jobs", "2", "quick", "a=1"], ["quick", "a=1"], []),
        (["run", "smoke", "--set", "b=2", "a=1"], ["smoke", "a=1"], ["b=2"]),
        # an option's own value with "=" in it stays the option's
        (["run", "--only", "method=x,budget=1", "quick", "d=4"], ["quick", "d=4"], []),
        (["config", "show", "--set", "x=1", "smoke", "y=2"], ["smoke", "y=2"], ["x=1"]),
        (["prepare", "--device", "cpu", "quick", "n_samples=4"], ["quick", "n_samples=4"], []),
        (["report", "--results", "R", "smoke", "seeds=[0]"], ["smoke", "seeds=[0]"], []),
    ],
)
def test_overrides_parse_wherever_they_stand(argv, items, sets):
    args = _parse(*argv)
    assert (args.items, args.set) == (items, sets)


def test_cell_overrides_parse_wherever_they_stand():
    args = _parse("cell", "a=1", "--seed", "3", "b=2", "--set", "c=3")
    assert (args.overrides, args.set, args.seed) == (["a=1", "b=2"], ["c=3"], 3)


def test_overrides_reach_the_suite():
    from isoeps.cli.run import suite_from_args

    args = _parse("config", "show", "smoke", "--set", "n_samples=4", "seeds=[0,1,2,3,4]")
    spec, overrides = suite_from_args(args)
    assert spec.seeds == [0, 1, 2, 3, 4] and spec.n_samples == 4
    assert overrides == ["seeds=[0,1,2,3,4]", "n_samples=4"]


@pytest.mark.parametrize(
    "argv", [["run", "quick", "--bogus"], ["cache", "dir", "extra"], ["run", "--jobs", "x"]]
)
def test_unknown_arguments_are_still_usage_errors(argv):
    with pytest.raises(SystemExit) as info:
        _parse(*argv)
    assert info.value.code == 2


def test_two_suites_are_a_config_error():
    from isoeps.cli.main import main

    assert main(["config", "show", "quick", "--set", "seeds=[0]", "smoke"]) == 2


def test_the_cli_uses_no_private_argparse_api():
    for path in CLI.glob("*.py"):
        text = path.read_text()
        for private in ("._actions", "._option_string_actions", "._get_", "._subparsers"):
            assert private not in text, f"{path.name} uses argparse's {private}"


def test_parse_positive_float_is_gone():
    assert not hasattr(_common, "parse_positive_float")
