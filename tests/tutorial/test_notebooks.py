"""The notebook series: structure checks (fast), and papermill runs of every notebook in order
with fast parameters, whose recorded values are read back and checked (marker ``notebooks``).

A notebook that raises fails its test with the cell and the traceback (papermill's
PapermillExecutionError, as reported by mmslim.tutorial.runner.run_notebooks).
"""

import ast
import math
import re

import nbformat
import papermill as pm
import pytest

from mmslim.tutorial.runner import (
    FAST_PARAMETERS,
    NOTEBOOKS,
    list_notebooks,
    repo_root,
    run_notebooks,
)

NB_DIR = repo_root() / "notebooks"
ALL = list_notebooks(NB_DIR)  # the core series, plus any later NN_topic notebook
UPPER = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _read(name):
    return nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)


def _python(cell) -> str:
    """A code cell's source with IPython magics commented out, so ast can parse it."""
    return "\n".join("# " + l if l.lstrip().startswith(("%", "!")) else l
                     for l in cell.source.splitlines())  # fmt: skip


# --------------------------------------------------------------------------- structure


def test_the_series_holds_the_core_notebooks_each_with_its_own_number():
    assert sorted(p.stem for p in NB_DIR.glob("*.ipynb")) == ALL, "name notebooks NN_topic"
    assert set(NOTEBOOKS) <= set(ALL)
    numbers = [n[:2] for n in ALL]
    assert len(numbers) == len(set(numbers))


@pytest.mark.parametrize("name", ALL)
def test_notebook_is_committed_without_outputs(name):
    for cell in _read(name).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.parametrize("name", ALL)
def test_notebook_layout(name):
    nb = _read(name)
    cells = nb.cells
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith(f"# {name[:2]} ")
    assert cells[1].cell_type == "code" and "import" in cells[1].source
    tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and cells[2] is tagged[0], "one parameters cell, after the imports"
    headings = re.findall(r"^## (\d+)\.", "\n".join(c.source for c in cells), re.M)
    assert headings and [int(h) for h in headings] == list(range(1, len(headings) + 1))
    for cell in cells:
        if cell.cell_type == "code":
            tree = ast.parse(_python(cell))
            assert not any(isinstance(n, ast.ClassDef) for n in ast.walk(tree)), "no classes"


@pytest.mark.parametrize("name", ALL)
def test_parameters_are_upper_case_literals_papermill_can_read(name):
    cell = next(c for c in _read(name).cells if "parameters" in c.metadata.get("tags", []))
    names = []
    for stmt in ast.parse(cell.source).body:
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1, ast.unparse(stmt)
        target = stmt.targets[0]
        assert isinstance(target, ast.Name) and UPPER.match(target.id), ast.unparse(stmt)
        ast.literal_eval(stmt.value)  # a literal, nothing computed
        names.append(target.id)
    for line in cell.source.splitlines():
        assert "#" in line, f"document every parameter in a comment: {line!r}"
    # papermill drops a line whose comment holds '=' or quotes it cannot parse: check it sees all
    assert sorted(pm.inspect_notebook(str(NB_DIR / f"{name}.ipynb"))) == sorted(names)
    assert set(FAST_PARAMETERS.get(name, {})) <= set(names)


# --------------------------------------------------------------------------- papermill runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory, request):
    """Every notebook, in order, once for the module; a line per notebook on the terminal."""
    out = tmp_path_factory.mktemp("notebooks")
    plugins = request.config.pluginmanager
    terminal, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")

    def progress(run):
        if terminal is not None and capture is not None:
            with capture.global_and_fixture_disabled():
                status = "ok" if run.ok else "FAILED"
                terminal.write_line(f"    {run.name:<32} {run.seconds:6.1f} s  {status}")

    runs = run_notebooks(out, fast=True, cell_timeout=300, on_done=progress)  # fast cells: < 1 min
    return {r.name: r for r in runs}


def _finite(records, *keys):
    for key in keys:
        assert key in records, f"{key} was not recorded"
        assert isinstance(records[key], (int, float)) and math.isfinite(records[key]), key
    return [records[k] for k in keys]


def _check_00(r):
    dyn, p99 = _finite(r, "dynamic_range_db", "peak_over_p99_db")
    assert 50 < dyn < 110 and 0 < p99 < dyn
    assert (r["n_frames"], r["n_subjects"], r["n_val_subjects"]) == (480, 12, 3)


def _check_01(r):
    paper, small = _finite(r, "params_paper", "params_cpu_small")
    assert 1.5e6 < paper < 2.0e6 and 0 < small < paper
    assert r["indices_per_frame"] == 952
    assert r["receptive_field_coarse"] > r["receptive_field_fine"] > 4


def _check_02(r):
    perplexity, dead = _finite(r, "toy_perplexity", "toy_dead_share")
    assert 2 <= perplexity <= 8 and 0 <= dead < 1
    ema, restarts = _finite(r, "toy_dead_share_ema", "toy_dead_share_restarts")
    assert ema > 0 and restarts == 0  # what section 6 says: only the restarts revive codes


def _check_03(r):
    mean, std = _finite(r, "mask_mean_untrained", "mask_std_untrained")
    assert 0 < mean < 1 and std > 0
    sigmoid_min, reference_min = _finite(r, "mask_min_sigmoid_head", "mask_min_reference_head")
    assert sigmoid_min < 0.05 and reference_min > 0.4, "section 4's claim about the two heads"
    if "mask_mean_trained" in r:
        on, off = _finite(r, "mask_target_trained", "mask_background_trained")
        assert on > off, "the trained mask must favour target cells"


def _check_04(r):
    ssim, psnr, const_ssim, const_psnr = _finite(
        r, "val_ssim", "val_psnr", "const_ssim", "const_psnr"
    )
    assert 0 < ssim <= 1 and psnr > 0
    target, const_target = _finite(r, "target_db", "const_target_db")
    assert target < const_target, "on target cells the model must beat each frame's mean"
    assert _finite(r, "mae_db")[0] > 0 and 0 < _finite(r, "mask_mean")[0] < 1
    assert _finite(r, "mask_target")[0] > _finite(r, "mask_background")[0], "the mask must split"
    assert _finite(r, "perplexity_hi")[0] >= 1 and _finite(r, "perplexity_lo")[0] >= 1


def _check_05(r):
    assert r["masknet_frozen"] is True
    target, whole, guess = _finite(
        r,
        "phase_error_target_rad",
        "phase_error_whole_map_rad",
        "phase_error_random_guess_rad",
    )
    assert 0 <= target <= math.pi and 0 <= whole <= math.pi
    assert target < guess, "on the target region the phase must beat a random guess"
    assert -1 <= _finite(r, "val_ssim")[0] <= 1 and 0 < _finite(r, "share_target")[0] < 1
    # section 6, the detail layer: each bit per cell costs more, and errors stay angles
    rates = _finite(r, "bpe_phase_alone", "bpe_detail_3", "bpe_detail_4", "bpe_detail_5")
    assert list(rates) == sorted(rates) and rates[0] < rates[1]
    for bits in (3, 4, 5):
        error, coverage = _finite(
            r, f"phase_error_target_detail_{bits}_rad", f"detail_target_coverage_{bits}"
        )
        assert 0 <= error <= math.pi and 0 <= coverage <= 1


def _check_06(r):
    for stage in ("amplitude", "phase"):
        for branch in ("hi", "lo"):
            perplexity, dead = _finite(
                r, f"{stage}_{branch}_perplexity", f"{stage}_{branch}_dead_share"
            )
            assert 1 <= perplexity <= 512 and 0 <= dead < 1
    assert 0 < _finite(r, "mask_mean")[0] < 1


def _check_07(r):
    ans, huffman, fixed, ideal = _finite(r, "bpe_ans", "bpe_huffman", "bpe_fixed", "bpe_ideal")
    assert 0 < ideal <= ans < fixed and huffman < fixed
    assert _finite(r, "ratio_float32_ans")[0] > 32 / fixed
    assert r["roundtrip_exact"] is True
    # the model trained for lost indices loses less of CFAR F1 when 30 % of them are lost
    lossy, shipped = _finite(r, "f1_drop_30_lossy", "f1_drop_30_shipped")
    assert lossy < shipped
    # section 8: 8 coarse codes cost fewer bits than 512; the detail layer cuts the target error
    few, full = _finite(r, "bpe_coarse8", "bpe_coarse512")
    assert few < full
    before, after = _finite(r, "target_db_coarse8", "target_db_detail3")
    assert after < before
    # section 9: the floor layer; its level lifts PSNR over a constant map for a few bytes, the
    # texture lifts it further for more bits, the more the finer the step
    names = ("detail3", "level", "texture16", "texture13")
    bpe = _finite(r, *(f"bpe_{k}" for k in names))
    gain = _finite(r, *(f"psnr_const_{k}" for k in names))
    assert list(bpe) == sorted(bpe) and bpe[1] - bpe[0] < 0.02
    assert list(gain) == sorted(gain) and gain[1] > gain[0] + 0.5
    assert abs(_finite(r, "floor_bias_db")[0]) > 0.5  # the decoded floor's level is off
    # section 10: the repair list lifts CFAR F1 (the detector it was made for) for few bits
    for without, with_list in (("shipped", "repairs"), ("layered", "layered_repairs")):
        before, after = _finite(r, f"f1_{without}", f"f1_{with_list}")
        assert after > before
    bpe_before, bpe_after = _finite(r, "bpe_shipped", "bpe_repairs")
    assert 0 < bpe_after - bpe_before < 0.03
    _finite(r, "f1_other_shipped", "f1_other_repairs")
    # the exact list: the same detections as the original, so the same micro-Doppler extent
    exact, near = _finite(r, "extent_layered_exact", "extent_layered_repairs")
    assert exact < 0.01 < near
    assert _finite(r, "bpe_layered_exact")[0] > _finite(r, "bpe_layered_repairs")[0]


def _check_08(r):
    ssim, mean = _finite(r, "state_ssim", "state_mask_mean")
    assert -1 <= ssim <= 1 and 0 <= mean <= 1
    _finite(r, "ssim_all_fine", "ssim_all_coarse")


def _check_09(r):
    assert r["n_variants"] >= 11 and r["all_exact"] is True
    for name in ("vq", "fsq"):
        ssim, bits, dead = _finite(r, f"{name}_ssim", f"{name}_bits_per_element", f"{name}_dead_hi")
        assert -1 <= ssim <= 1 and 0 < bits < 9 and 0 <= dead <= 1
    # the shipped results cover known variants only, and the notebook names those they lack
    assert r["full_variants"] + r["unbenchmarked_variants"] == r["n_variants"]
    assert r["full_variants"] >= 12
    # section 6: the six later variants, in both branches and the fine one, each with 3 seeds
    assert r["later_compared"] == 12
    verdicts = [k for k in r if k.startswith("later_") and k.endswith("_verdict")]
    assert len(verdicts) == 12
    for key in verdicts:
        assert r[key] in ("helps", "hurts", "within the noise"), key
        _finite(r, key.removesuffix("_verdict") + "_dssim")


CHECKS = {name: globals()[f"_check_{name[:2]}"] for name in ALL}  # every notebook has one


def _check_all(r):
    """Whatever a notebook records: numbers are finite."""
    for key, value in r.items():
        if isinstance(value, float):
            assert math.isfinite(value), f"{key} = {value}"


@pytest.mark.notebooks
@pytest.mark.parametrize("name", ALL)
def test_notebook_runs_and_records_sound_values(runs, name):
    run = runs[name]
    if not run.ok:
        pytest.fail(run.error, pytrace=False)
    _check_all(run.records)
    CHECKS.get(name, lambda r: None)(run.records)
    assert run.figures or name == "01_encoders_decoders", "a notebook should show something"
