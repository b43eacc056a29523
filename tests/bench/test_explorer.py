"""``mmslim bench explorer`` (mmslim.bench.explorer): it runs end to end on the shipped model
and reports every kind of change; the figures themselves are machine-dependent, not checked."""

from mmslim.cli.main import main

CHANGES = ["new frame", "new threshold", "seen before (cached)", "new map kind", "rebuild"]


def test_bench_explorer_reports_every_kind_of_change(capsys):
    assert main(["bench", "explorer", "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["change", "n"]
    assert [l.split("  ")[0].split(" (new")[0].strip() for l in lines[1:]] == CHANGES
    for line in lines[1:]:
        *_, wall, wall_max, cpu, kb = line.split()
        assert 0 < float(wall) <= float(wall_max) and float(cpu) > 0 and float(kb) > 10


def test_bench_explorer_refuses_more_repeats_than_frames(capsys):
    assert main(["bench", "explorer", "--repeats", "500"]) != 0
    assert "repeats" in capsys.readouterr().err
