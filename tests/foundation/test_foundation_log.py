"""The console log's cell tag: which cell a line belongs to, the time in it, the run's ETA."""

from __future__ import annotations

import logging

from isoeps.log import _CellFormatter, cell_context, duration_text, set_phase, set_run_eta

FORMAT = "%(name)s: %(cell_tag)s%(message)s"


def _line(message: str) -> str:
    record = logging.LogRecord("isoeps.x", logging.INFO, __file__, 1, message, None, None)
    return _CellFormatter(FORMAT).format(record)


def test_lines_outside_a_cell_carry_no_tag() -> None:
    assert _line("phase: fit") == "isoeps.x: phase: fit"


def test_lines_inside_a_cell_name_it_and_the_time_in_it() -> None:
    with cell_context("cell 3/12 ar eps=1 s0"):
        assert _line("phase: fit") == "isoeps.x: [cell 3/12 ar eps=1 s0, 0 s in] phase: fit"
        set_run_eta("about 20 min left")
        try:
            assert "[cell 3/12 ar eps=1 s0, 0 s in; run: about 20 min left] step" in _line("step")
        finally:
            set_run_eta("")
        set_phase("fit")
        assert _line("step 10/40") == "isoeps.x: [cell 3/12 ar eps=1 s0: fit, 0 s in] step 10/40"
    assert _line("done") == "isoeps.x: done"
    set_phase("metrics")  # outside a cell: nothing to tag, no error
    assert _line("done") == "isoeps.x: done"


def test_durations_read_as_a_person_would_say_them() -> None:
    assert [duration_text(s) for s in (40, 12 * 60, 65 * 60)] == ["40 s", "12 min", "1 h 5 min"]


def test_a_bar_off_a_terminal_becomes_log_lines_at_a_bounded_rate(monkeypatch, caplog):
    from isoeps import log as log_module

    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(log_module, "OFF_TERMINAL_INTERVAL_S", 0.0)
    with caplog.at_level(logging.INFO, logger="isoeps"):
        assert list(log_module.progress(range(3), desc="train x")) == [0, 1, 2]
    lines = [r.getMessage() for r in caplog.records if r.name == "isoeps.progress"]
    assert lines and all(line.startswith("train x:") for line in lines)
    assert "3/3" in lines[-1]


def test_a_bar_off_a_terminal_stays_quiet_when_its_loop_logs_itself(monkeypatch, caplog):
    from isoeps import log as log_module

    monkeypatch.setenv("CI", "true")
    with caplog.at_level(logging.INFO, logger="isoeps"):
        list(log_module.progress(range(3), desc="x", log_off_terminal=False))
        list(log_module.progress(range(3), desc="y", disable=True))
    assert not [r for r in caplog.records if r.name == "isoeps.progress"]


def test_a_bar_off_a_terminal_has_no_monitor_thread_to_log_untagged_lines(monkeypatch):
    from isoeps import log as log_module

    monkeypatch.setenv("CI", "true")
    bar = log_module.progress(range(3), desc="x")
    try:
        assert bar.monitor_interval == 0 and bar.monitor is None
    finally:
        bar.close()
