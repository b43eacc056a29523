"""The command line never shows a traceback: bad input of every kind ends in one line naming the
problem and the fix, exit code 1 (2 for usage errors, 130 for Ctrl-C); ``--debug`` shows it."""

from __future__ import annotations

import pytest

from mmslim.bench.hostile_cli import cli_cases, interrupt_training, make_inputs, run_case
from mmslim.cli.main import main
from mmslim.training.checkpoint import load_checkpoint
from tests.codec.golden_files import GOLDEN

CHECKPOINT = GOLDEN / "model.pt"  # the tiny golden model: no training needed


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_inputs(tmp_path_factory.mktemp("bad"), CHECKPOINT)


def test_every_bad_input_ends_in_one_line_and_its_exit_code(inputs):
    problems = []
    cases = cli_cases(inputs, CHECKPOINT)
    assert len(cases) > 60
    for case in cases:
        code, out, err, escaped = run_case(case.argv)
        errors = [line for line in err.splitlines() if "error:" in line]
        if escaped or "Traceback" in out + err:
            problems.append(f"{case.name}: traceback ({escaped})")
        elif code != case.code:
            problems.append(f"{case.name}: exit {code}, expected {case.code}: {err[-300:]}")
        elif case.code and len(errors) != 1:
            problems.append(f"{case.name}: {len(errors)} error lines: {err[-300:]}")
        elif case.code and case.says.lower() not in errors[0].lower():
            problems.append(f"{case.name}: {errors[0]!r} does not say {case.says!r}")
    assert not problems, "\n".join(problems)


def test_integer_maps_are_converted_with_a_note(inputs, tmp_path, capsys):
    out = tmp_path / "int.mmsl"
    assert (
        main(["compress", str(inputs["int16.npy"]), str(out), "--checkpoint", str(CHECKPOINT)]) == 0
    )
    assert "int16 values; converted to float32" in capsys.readouterr().err
    assert out.stat().st_size > 0


def test_debug_shows_the_traceback_anywhere_on_the_line(inputs, capsys):
    argv = ["inspect", str(inputs["random.mmsl"])]
    assert main(argv) == 1
    assert "Traceback" not in capsys.readouterr().err
    assert main([*argv, "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "BitstreamError" in err
    assert err.strip().splitlines()[-1].startswith("mmslim inspect: error: not an mmslim file")


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (MemoryError(), "out of memory; process fewer frames"),
        (ZeroDivisionError("boom"), "unexpected ZeroDivisionError: boom; rerun with --debug"),
        (IsADirectoryError(21, "Is a directory", "somewhere"), "somewhere is a folder"),
        (PermissionError(13, "Permission denied", "there"), "there: permission denied"),
    ],
)
def test_errors_nobody_planned_for_are_one_line_too(inputs, monkeypatch, capsys, error, says):
    """Running out of memory cannot be provoked cheaply and safely here, so the decoder is
    replaced by one that raises; everything else on the path is real."""

    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr("mmslim.codec.maps.decompress_maps", failing)
    argv = ["decompress", str(inputs["valid.mmsl"]), str(inputs["folder"] / "x.npy")]
    assert main([*argv, "--checkpoint", str(CHECKPOINT)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"mmslim decompress: error: {says}"), last


def test_ctrl_c_during_training_says_what_was_saved(inputs, tmp_path):
    run = tmp_path / "run"
    code, err = interrupt_training(inputs["data"], run)
    assert code == 130, err[-2000:]
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("mmslim train: interrupted; ") and "--resume" in last
    epoch = load_checkpoint(run / "amplitude.pt")["epoch"]  # whole and readable
    assert f"holds epoch {epoch} " in last and epoch >= 1
