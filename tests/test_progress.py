"""Progress output: bars on a terminal, a few lines in a log."""

from __future__ import annotations

from flows.cli import _Bars, _Lines


def test_lines_print_start_end_and_at_most_one_line_every_interval(capsys):
    lines = _Lines(every_s=3600)  # nothing is due in between within this test
    for stage, total in (("synth", 1200), ("train", 500)):
        for done in range(1, total + 1):
            lines(stage, done, total)
    err = capsys.readouterr().err.splitlines()
    assert err == ["synth: started", "synth: done (1200/1200)", "train: started", "train: done (500/500)"]


def test_lines_report_progress_when_the_interval_has_passed(capsys):
    lines = _Lines(every_s=0.0)
    for done in (1, 2, 3):
        lines("render", done, 4)
    lines("render", 4, 4)
    assert capsys.readouterr().err.splitlines() == ["render: started", "render: 1/4", "render: 2/4", "render: 3/4",
                                                    "render: done (4/4)"]


def test_bars_close_when_their_stage_is_done():
    bars = _Bars()
    bars("synth", 5, 10)
    assert "synth" in bars.bars
    bars("synth", 10, 10)
    assert "synth" not in bars.bars  # closed at once, not when the whole run ends
    bars.close()
