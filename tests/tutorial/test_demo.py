"""make demo's pieces: recorded values printed with units, the closing summary, the scales'
parameters, progress read back from a bar's file, and the kernel it runs notebooks on."""

import ast
import asyncio
import io
import json
import re
import time
from pathlib import Path

import nbformat
import numpy as np
import papermill as pm
import pytest
import torch

from mmslim.tutorial.demo import (
    EXPECTED_SECONDS,
    SUMMARY,
    Ticker,
    expected_line,
    format_summary,
    last_bar,
    main,
)
from mmslim.tutorial.progress import PROGRESS_ENV, progress_bar
from mmslim.tutorial.record import ENV_VAR, format_value, read_records, record, unit_of
from mmslim.tutorial.runner import SCALES, NotebookRun, list_notebooks, repo_root

NB_DIR = repo_root() / "notebooks"


# --------------------------------------------------------------------------- record


@pytest.mark.parametrize(
    "name, unit",
    [("target_db", "dB"), ("val_psnr", "dB"), ("phase_error_target_rad", "rad"),
     ("train_seconds", "s"), ("bpe_ans", "bits/element"), ("vq_bits_per_element", "bits/element"),
     ("top_code_bits_hi", "bits"), ("ratio_float32_ans", "×"), ("paper_ratio", "×"),
     ("amplitude_hi_perplexity", "codes"), ("params_paper", "parameters"),
     ("receptive_field_fine", "cells"), ("val_ssim", ""), ("mask_amplitude_correlation", ""),
     ("toy_dead_share", "")],
)  # fmt: skip
def test_units_follow_the_name(name, unit):
    assert unit_of(name) == unit


@pytest.mark.parametrize(
    "value, unit, shown",
    [(2.93812, "dB", "2.938 dB"), (0.749, "", "0.749"), (0.74900001, "", "0.749"),
     (187.69373, "s", "187.7 s"), (66.0442, "×", "66.04 ×"), (0.0002235, "", "2.235e-04"),
     (1827300, "parameters", "1,827,300 parameters"), (12345.678, "", "12,346"),
     (3.0, "", "3"), (0.0, "dB", "0.0 dB"), (True, "", "True"), ("vq-rotation", "", "vq-rotation"),
     (float("nan"), "rad", "nan rad")],
)  # fmt: skip
def test_values_are_rounded_for_reading(value, unit, shown):
    assert format_value(value, unit) == shown


def test_record_prints_rounded_plain_values_with_units_and_keeps_the_exact_one(
    tmp_path, monkeypatch, capsys
):
    file = tmp_path / "records.json"
    monkeypatch.setenv(ENV_VAR, str(file))
    returned = record("target_db", np.float64(2.938123456))
    assert type(returned) is float and returned == 2.938123456
    assert record("n_frames", np.int64(480)) == 480
    assert record("mask_mean", torch.tensor([0.25])) == 0.25
    assert record("frozen", np.bool_(True)) is True
    record("custom", 1.5, unit="m/s")
    out = capsys.readouterr().out.splitlines()
    assert out == ["recorded target_db = 2.938 dB", "recorded n_frames = 480",
                   "recorded mask_mean = 0.25", "recorded frozen = True",
                   "recorded custom = 1.5 m/s"]  # fmt: skip
    assert "np." not in " ".join(out)
    assert read_records(file) == {
        "target_db": 2.938123456, "n_frames": 480, "mask_mean": 0.25, "frozen": True,
        "custom": 1.5}  # fmt: skip
    json.loads(file.read_text())  # plain JSON, no numpy left


def test_record_refuses_arrays_and_empty_names():
    with pytest.raises(TypeError, match="summary numbers"):
        record("x", np.zeros(3))
    with pytest.raises(ValueError, match="non-empty name"):
        record("", 1.0)


# --------------------------------------------------------------------------- summary


def _recorded_names(name: str) -> list[re.Pattern]:
    """What a notebook records: each record(...) call's first argument as a pattern (an
    f-string's {...} matches anything), and the keys of a dict a notebook records in a loop
    (``for name, value in results.items(): record(name, value)``)."""
    nb = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    source = "\n".join(c.source for c in nb.cells)
    found = re.findall(r"record\(\s*(f?)([\"'])(.+?)\2", source)
    if re.search(r"record\(name, value\)", source):
        found += [("", '"', k) for k in re.findall(r'^\s*"(\w+)":', source, re.M)]
    return [re.compile(re.sub(r"\\\{.*?\\\}", ".+", re.escape(text)) + "$") if f
            else re.compile(re.escape(text) + "$") for f, _, text in found]  # fmt: skip


@pytest.mark.parametrize("row", SUMMARY, ids=lambda r: f"{r[0][:2]}-{r[2][0]}")
def test_every_summary_value_is_recorded_by_its_notebook(row):
    name, _, keys = row
    assert name in list_notebooks()
    patterns = _recorded_names(name)
    for key in keys:
        assert any(p.match(key) for p in patterns), f"{name} records no {key}"


def _run(name, records, ok=True):
    return NotebookRun(name, ok, 1.0, Path(f"{name}.ipynb"), records)


def test_the_summary_is_short_rounded_and_in_units():
    runs = [
        _run("04_train_amplitude", {"train_seconds": 187.6937, "target_db": 2.93812,
                                    "const_target_db": 40.7901, "mask_target": 0.97121,
                                    "mask_background": 0.1402, "val_ssim": 0.63}),
        _run("05_train_phase", {"train_seconds": 40.0}),  # the phase-error row is skipped
    ]  # fmt: skip
    text = format_summary(runs)
    lines = text.splitlines()
    assert len(lines) == 2 + 4  # header, rule, four rows
    assert "2.938 dB / 40.79 dB" in text and "187.7 s" in text and "0.9712 / 0.1402" in text
    assert "phase error" not in text and "40 s" in text
    assert format_summary([]) == "(no summary values recorded)"


def test_expected_time_is_stated_for_every_notebook_of_the_series():
    assert set(EXPECTED_SECONDS) == set(list_notebooks())
    line = expected_line(list_notebooks(), "cpu")
    total = sum(EXPECTED_SECONDS.values())
    assert f"{total // 60}:{total % 60:02d}" in line and "2 idle CPU cores" in line
    assert "GPU" in expected_line(list_notebooks(), "paper")


# --------------------------------------------------------------------------- scales


@pytest.mark.parametrize("scale", sorted(SCALES))
def test_every_scale_sets_parameters_its_notebooks_declare_with_the_same_types(scale):
    for name, params in SCALES[scale].items():
        declared = pm.inspect_notebook(str(NB_DIR / f"{name}.ipynb"))
        assert set(params) <= set(declared), f"{name}: {sorted(set(params) - set(declared))}"
        for key, value in params.items():
            default = ast.literal_eval(declared[key]["default"])  # literals only
            assert type(value) is type(default), f"{name}.{key}: {value!r} vs {default!r}"


def test_the_paper_scale_trains_the_paper_preset():
    for name in ("04_train_amplitude", "05_train_phase"):
        assert SCALES["paper"][name]["PRESET"] == "paper"
        assert SCALES["paper"][name]["EPOCHS"] >= 500


def test_an_unknown_scale_is_refused_naming_the_choices(capsys):
    with pytest.raises(SystemExit):
        main(["--scale", "huge"])
    assert "choose from" in capsys.readouterr().err


# --------------------------------------------------------------------------- progress


def test_a_headless_bar_writes_text_states_that_the_demo_reads_back(tmp_path, monkeypatch):
    file = tmp_path / "bar.txt"
    assert last_bar(file) == ""
    monkeypatch.setenv(PROGRESS_ENV, str(file))
    for _ in progress_bar(range(4), desc="train amplitude", unit="epoch", mininterval=0):
        pass
    text = file.read_bytes().decode()  # read_text() would turn each \r into a newline
    assert text.count("\r") >= 4 and "0/4" in text  # one state per refresh, plain text
    assert last_bar(file).startswith("train amplitude: 100%") and "4/4" in last_bar(file)


# --------------------------------------------------------------------------- kernel


def test_the_kernel_runs_on_local_sockets_silently_and_leaves_none_behind(tmp_path):
    from jupyter_core.paths import jupyter_runtime_dir

    from mmslim.tutorial.kernel import TRANSPORT, PollingKernelManager

    log = tmp_path / "kernel.log"

    async def scenario():
        km = PollingKernelManager(kernel_name="python3")
        with open(log, "w") as err:
            await km.start_kernel(stderr=err, cwd=str(tmp_path))
        client = km.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=120)
            reply = await client.execute_interactive("1 + 1", timeout=120)
        finally:
            client.stop_channels()
            prefix = km.ip
            await km.shutdown_kernel()
        return km.transport, prefix, reply["content"]["status"]

    transport, prefix, status = asyncio.run(scenario())
    assert transport == TRANSPORT and status == "ok"
    text = log.read_text()
    assert "without encryption" not in text and "KeyboardInterrupt" not in text, text
    if transport == "ipc":
        assert Path(prefix).parent == Path(jupyter_runtime_dir())
        assert not list(Path(prefix).parent.glob(Path(prefix).name + "*")), "sockets left"
    assert not any(p.is_socket() for p in tmp_path.iterdir()), "sockets in the working folder"


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("live", [True, False])
def test_the_ticker_shows_position_name_bar_and_outcome(tmp_path, monkeypatch, live):
    monkeypatch.setattr("mmslim.tutorial.demo.LOG_EVERY_S", 0.5)
    stream = _Terminal() if live else io.StringIO()
    ticker = Ticker(stream)
    bar = tmp_path / "bar.txt"
    bar.write_bytes(b"\rtrain amplitude:  50%|##  | 6/12\rtrain amplitude:  58%|##  | 7/12")
    ticker.start("04_train_amplitude", 5, 10, bar)
    time.sleep(1.6)
    ticker.done(_run("04_train_amplitude", {}))
    out = stream.getvalue()
    assert "[5/10] 04_train_amplitude" in out and "7/12" in out and "6/12" not in out
    last = out.rstrip().splitlines()[-1]
    assert re.search(r"04_train_amplitude +1 s +ok +\(all so far 0:0\d\)$", last), last
    assert ("\r\x1b[K" in out) == live
