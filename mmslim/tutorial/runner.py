"""Running the notebook series headlessly with papermill, and the paths the notebooks share.

One runner serves ``make demo`` (:mod:`mmslim.tutorial.demo`) and the notebook tests
(``tests/tutorial/test_notebooks.py``): :func:`run_notebooks` executes every
``notebooks/NN_topic.ipynb`` in order of its number into a run folder::

    OUT/
      00_radar_primer.ipynb ...   executed notebooks (outputs included)
      figures/NN_name-CC-K.png    every figure they displayed (cell CC, K-th image)
      records/NN_name.json        the values each recorded with mmslim.tutorial.record
      progress/NN_name.txt        its training bars (mmslim.tutorial.progress)
      checkpoints/                amplitude.pt, phase.pt written by 04 and 05, read by 05-08

Each notebook gets the parameters it declares among ``REPO_ROOT``, ``DATA`` and
``CHECKPOINT_DIR``, plus any given for it (a scale of :data:`SCALES`, e.g. the tests' fast one).
Inside a notebook, :func:`resolve_paths` and :func:`find_checkpoint` turn the (possibly empty)
parameters into paths, so the same notebook runs from JupyterLab, from papermill in any
working directory, and from an installed package.
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mmslim.config import STAGES
from mmslim.data.samples import sample_path
from mmslim.nn.quantizers.zoo import VARIANTS
from mmslim.tutorial.progress import PROGRESS_ENV
from mmslim.tutorial.record import ENV_VAR, read_records

NOTEBOOK_NAME = re.compile(r"^\d\d_[a-z0-9_]+$")  # NN_topic: the number sets the order
NOTEBOOKS = (  # the core series; list_notebooks() also finds any later NN_topic notebook
    "00_radar_primer",
    "01_encoders_decoders",
    "02_vector_quantizer",
    "03_masknet",
    "04_train_amplitude",
    "05_train_phase",
    "06_masks_codebooks_perplexity",
    "07_bitstream_and_rate",
    "08_mask_explorer",
)


# Smallest settings that still exercise every cell; the notebook tests use them so that the
# whole series runs in a few minutes on 2 CPU cores. Notebook defaults are the next step up.
FAST_PARAMETERS: dict[str, dict] = {
    "00_radar_primer": {"N_FRAMES": 4},
    "02_vector_quantizer": {"TOY_STEPS": 60},
    "04_train_amplitude": {"EPOCHS": 6, "FRAMES_PER_SEQUENCE": 10},
    "05_train_phase": {"EPOCHS": 6, "FRAMES_PER_SEQUENCE": 10},
    "06_masks_codebooks_perplexity": {"FRAMES_PER_SEQUENCE": 10},
    "07_bitstream_and_rate": {"FRAMES_PER_SEQUENCE": 10, "RD_FRAMES": 6},
}

# The reference recipe at full size, meant for a GPU (``make demo SCALE=paper``): the paper
# preset's model and learning rates, batch 32 and 500 epochs (the reference trains 500 to 2000),
# every frame in the codec comparison, and every quantizer variant at the benchmark's budget.
PAPER_PARAMETERS: dict[str, dict] = {
    "01_encoders_decoders": {"PRESET": "paper"},
    "03_masknet": {"PRESET": "paper"},
    "04_train_amplitude": {"PRESET": "paper", "EPOCHS": 500, "BATCH_SIZE": 32},
    "05_train_phase": {"PRESET": "paper", "EPOCHS": 500, "BATCH_SIZE": 32},
    "07_bitstream_and_rate": {"RD_FRAMES": 0},
    "09_quantizer_zoo": {
        "VARIANTS_TRAINED": list(VARIANTS),
        "EPOCHS": 5,
        "FRAMES_PER_SEQUENCE": 20,
    },
}

# Parameter sets by name: the tests' smallest, the notebooks' own defaults (2 CPU cores), the
# reference recipe (a GPU). make demo's SCALE and the demo's --scale choose among them.
SCALES: dict[str, dict[str, dict]] = {
    "fast": FAST_PARAMETERS,
    "cpu": {},
    "paper": PAPER_PARAMETERS,
}


# --------------------------------------------------------------------------- paths


def repo_root() -> Path:
    """The checkout holding this package (``mmslim/..``): notebooks and data_samples live there."""
    return Path(__file__).resolve().parents[2]


def resolve_paths(
    repo_root_param: str = "", data_param: str = "", checkpoint_dir_param: str = ""
) -> tuple[Path, Path, Path]:
    """Notebook parameters -> ``(root, data, checkpoint_dir)`` as absolute paths.

    Empty strings mean the defaults: the checkout of this package, its
    ``data_samples/sample.npz``, and ``runs/notebooks/`` inside it (ignored by git), so that
    notebooks run by hand one after the other find each other's checkpoints.
    """
    root = Path(repo_root_param).expanduser().resolve() if repo_root_param else repo_root()
    data = Path(data_param).expanduser() if data_param else sample_path("sample.npz")
    ckpt = Path(checkpoint_dir_param).expanduser() if checkpoint_dir_param else None
    return root, data.resolve(), (ckpt or root / "runs" / "notebooks").resolve()


def pretrained_checkpoint(stage: str, root: Path | None = None) -> Path:
    """``data_samples/pretrained/{stage}.pt`` of the checkout (it may not exist)."""
    if root is None:
        return sample_path("pretrained", f"{stage}.pt")
    return root / "data_samples" / "pretrained" / f"{stage}.pt"


def find_checkpoint(checkpoint_dir: str | Path, stage: str, root: Path | None = None):
    """The checkpoint a notebook should read for ``stage``: ``checkpoint_dir/{stage}.pt`` if a
    training notebook wrote it, else the shipped pretrained one; ``None`` if neither exists."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
    for path in (Path(checkpoint_dir) / f"{stage}.pt", pretrained_checkpoint(stage, root)):
        if path.is_file():
            return path
    return None


def list_notebooks(folder: str | Path | None = None) -> list[str]:
    """Names of the ``NN_topic.ipynb`` notebooks in ``folder`` (default the checkout's
    ``notebooks/``), in series order."""
    folder = Path(folder) if folder else repo_root() / "notebooks"
    return sorted(p.stem for p in folder.glob("*.ipynb") if NOTEBOOK_NAME.match(p.stem))


# --------------------------------------------------------------------------- running


@dataclass
class NotebookRun:
    """What running one notebook gave."""

    name: str  # e.g. "04_train_amplitude"
    ok: bool
    seconds: float
    output: Path  # the executed notebook
    records: dict = field(default_factory=dict)  # values recorded with mmslim.tutorial.record
    figures: list[Path] = field(default_factory=list)
    error: str | None = None  # which cell failed, and its traceback


def run_notebooks(
    out_dir: str | Path,
    names: list[str] | None = None,
    parameters: dict[str, dict] | None = None,
    fast: bool = False,
    stop_on_error: bool = False,
    kernel: str = "python3",
    cell_timeout: float | None = None,
    notebook_dir: str | Path | None = None,
    on_done: Callable[[NotebookRun], None] | None = None,
    on_start: Callable[[str, int, int, Path], None] | None = None,
) -> list[NotebookRun]:
    """Execute notebooks in order with papermill into ``out_dir`` (layout in the module doc).

    names: which notebooks of the folder (default all, see :func:`list_notebooks`), run in
        series order whatever the order given.
    parameters: ``{notebook name: {PARAM: value}}`` on top of the shared paths.
    fast: start from :data:`FAST_PARAMETERS`.
    stop_on_error: stop after the first failing notebook (later ones would fall back to the
        pretrained checkpoints, which hides the failure's effect).
    cell_timeout: seconds one cell may run before the notebook fails (None: no limit).
    on_done: called with each :class:`NotebookRun` as it finishes (progress lines).
    on_start: called as each notebook starts with its name, its position (1-based), the number
        of notebooks, and the file its training bars write to (``OUT/progress/NN_name.txt``,
        see :mod:`mmslim.tutorial.progress`; it exists once a bar has drawn).
    """
    import papermill as pm

    root = repo_root()
    src_dir = Path(notebook_dir) if notebook_dir else root / "notebooks"
    available = list_notebooks(src_dir)
    missing = sorted(set(names or []) - set(available))
    if missing:
        raise ValueError(f"no notebooks {missing} in {src_dir}; found {available}")
    names = available if names is None else [n for n in available if n in set(names)]
    out_dir = Path(out_dir).resolve()
    for sub in ("figures", "records", "checkpoints", "progress"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    shared = {
        "REPO_ROOT": str(root),
        "DATA": str(root / "data_samples" / "sample.npz"),
        "CHECKPOINT_DIR": str(out_dir / "checkpoints"),
    }
    runs = []
    for position, name in enumerate(names, 1):
        src = src_dir / f"{name}.ipynb"
        declared = pm.inspect_notebook(str(src))
        extra = {
            **(FAST_PARAMETERS.get(name, {}) if fast else {}),
            **(parameters or {}).get(name, {}),
        }
        unknown = sorted(set(extra) - set(declared))
        if unknown:
            raise ValueError(f"{name} has no parameters {unknown}; it declares {sorted(declared)}")
        params = {k: v for k, v in shared.items() if k in declared} | extra
        progress_file = out_dir / "progress" / f"{name}.txt"
        progress_file.unlink(missing_ok=True)
        if on_start:
            on_start(name, position, len(names), progress_file)
        run = _run_one(pm, name, src, out_dir, params, kernel, cell_timeout, progress_file)
        runs.append(run)
        if on_done:
            on_done(run)
        if stop_on_error and not run.ok:
            break
    return runs


def _run_one(pm, name, src, out_dir, params, kernel, cell_timeout, progress_file) -> NotebookRun:
    output = out_dir / f"{name}.ipynb"
    record_file = out_dir / "records" / f"{name}.json"
    record_file.unlink(missing_ok=True)
    start = time.perf_counter()
    error = None
    from mmslim.tutorial.kernel import PollingKernelManager

    try:
        with _environ(_kernel_environment(record_file, progress_file)):
            pm.execute_notebook(
                str(src),
                str(output),
                parameters=params,
                kernel_name=kernel,
                cwd=str(out_dir),
                progress_bar=False,
                execution_timeout=cell_timeout,
                kernel_manager_class=PollingKernelManager,  # no hang on a missed reply
            )
    except pm.PapermillExecutionError as err:
        error = (
            f"{name}: cell {err.cell_index} (In [{err.exec_count}]) raised "
            f"{err.ename}: {err.evalue}\n{_strip_ansi(''.join(err.traceback))}"
        )
    except Exception as err:  # kernel died, timeout, missing kernel, ...
        error = f"{name}: {type(err).__name__}: {err}"
    seconds = time.perf_counter() - start
    figures = extract_figures(output, out_dir / "figures", name) if output.exists() else []
    return NotebookRun(
        name, error is None, seconds, output, read_records(record_file), figures, error
    )


def _kernel_environment(record_file: Path, progress_file: Path) -> dict[str, str]:
    """Variables the kernel inherits: where to record, where progress bars write, and how
    OpenMP threads wait.

    ``OMP_WAIT_POLICY=PASSIVE`` (unless already set) lets torch's idle threads sleep instead of
    spinning. On a machine shared with other jobs, spinning threads steal the cores their
    siblings need: a cpu-small training step measured 8 s instead of 0.7 s on a busy 2-core box.
    """
    return {
        ENV_VAR: str(record_file),
        PROGRESS_ENV: str(progress_file),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
    }


@contextmanager
def _environ(values: dict[str, str]):
    """Set environment variables for the duration of the block (kernels inherit them)."""
    previous = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def extract_figures(notebook: Path, folder: Path, prefix: str) -> list[Path]:
    """Write every PNG a notebook displayed to ``folder/prefix-CC-K.png``; returns the paths."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    paths = []
    for c, cell in enumerate(nb.cells):
        images = [
            o["data"]["image/png"]
            for o in cell.get("outputs", [])
            if "image/png" in o.get("data", {})
        ]
        for k, data in enumerate(images):
            path = folder / f"{prefix}-{c:02d}-{k}.png"
            path.write_bytes(base64.b64decode(data))
            paths.append(path)
    return paths


__all__ = [
    "FAST_PARAMETERS",
    "NOTEBOOKS",
    "PAPER_PARAMETERS",
    "SCALES",
    "NotebookRun",
    "extract_figures",
    "find_checkpoint",
    "list_notebooks",
    "pretrained_checkpoint",
    "repo_root",
    "resolve_paths",
    "run_notebooks",
]
