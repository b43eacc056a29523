"""``python -m mmslim.tutorial.demo`` (``make demo``): every notebook, headlessly, in order.

Executed notebooks, figures, recorded values and checkpoints go to ``runs/<YYYYmmdd-HHMMSS>/``
(layout in :mod:`mmslim.tutorial.runner`). What the terminal shows:

* the expected time, before anything runs;
* per notebook its position, name and elapsed time, and inside training the epoch bar of
  :func:`mmslim.training.fit.train` (written by :mod:`mmslim.tutorial.progress`), redrawn in
  place on a terminal, a line every :data:`LOG_EVERY_S` seconds when the output is a file;
* a summary of the main recorded values, rounded and with units (:data:`SUMMARY`), and the
  folder to open.

``--scale`` picks a parameter set of :data:`mmslim.tutorial.runner.SCALES`: ``cpu`` (the
notebooks' own defaults, for 2 CPU cores), ``paper`` (the reference recipe, for a GPU), ``fast``
(the tests' smallest). Exit status 1 if a notebook failed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import threading
import time
from pathlib import Path

from mmslim.tutorial.record import format_value, unit_of
from mmslim.tutorial.runner import SCALES, NotebookRun, list_notebooks, repo_root, run_notebooks

# Seconds each notebook took at the cpu scale, measured by this demo on 2 idle CPU cores (one
# OpenMP thread): 8:12 summed here, 8:17 for the whole run. A busy machine takes longer: 17:54
# with other jobs keeping both cores busy. The total is announced before a run.
EXPECTED_SECONDS = {
    "00_radar_primer": 9,
    "01_encoders_decoders": 7,
    "02_vector_quantizer": 9,
    "03_masknet": 9,
    "04_train_amplitude": 198,
    "05_train_phase": 148,
    "06_masks_codebooks_perplexity": 23,
    "07_bitstream_and_rate": 53,
    "08_mask_explorer": 11,
    "09_quantizer_zoo": 25,
}
LOG_EVERY_S = 20.0  # when stdout is not a terminal: at most one progress line this often

# (notebook, what, recorded names): one row of the closing summary each, units from the names
SUMMARY: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("00_radar_primer", "dynamic range of a frame (peak over median)", ("dynamic_range_db",)),
    ("01_encoders_decoders", "indices sent per frame (fine + coarse)", ("indices_per_frame",)),
    ("04_train_amplitude", "amplitude training time", ("train_seconds",)),
    ("04_train_amplitude", "target dB error: model / constant map",
     ("target_db", "const_target_db")),
    ("04_train_amplitude", "mask on target cells / elsewhere", ("mask_target", "mask_background")),
    ("05_train_phase", "phase training time", ("train_seconds",)),
    ("05_train_phase", "phase error on targets / random guess",
     ("phase_error_target_rad", "phase_error_random_guess_rad")),
    ("06_masks_codebooks_perplexity", "perplexity, amplitude fine / coarse",
     ("amplitude_hi_perplexity", "amplitude_lo_perplexity")),
    ("07_bitstream_and_rate", "amplitude rate, ANS file", ("bpe_ans",)),
    ("07_bitstream_and_rate", "smaller than float32 by", ("ratio_float32_ans",)),
    ("07_bitstream_and_rate", "CFAR F1 at mmSlim's rate; codecs that do better",
     ("rd_cfar_f1_mmslim", "rd_cfar_f1_codecs_better")),
    ("08_mask_explorer", "explorer frame: SSIM, PSNR", ("state_ssim", "state_psnr")),
    ("09_quantizer_zoo", "best quantizer variant (shipped benchmark)", ("full_best_variant",)),
)  # fmt: skip


def _clock(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def expected_line(names: list[str], scale: str) -> str:
    """What the run will take, said before it starts."""
    if scale == "paper":
        return ("expected time: the paper recipe trains 500 epochs per stage, meant for a GPU; "
                "not measured yet (days on a CPU)")  # fmt: skip
    if scale == "fast":
        return "expected time: a few minutes (the tests' smallest settings)"
    known = [EXPECTED_SECONDS[n] for n in names if n in EXPECTED_SECONDS]
    if not known:
        return "expected time: not measured for these notebooks"
    return (f"expected time: about {_clock(sum(known))} (min:s), as measured on 2 idle CPU cores; "
            "about twice that on a busy machine")  # fmt: skip


def last_bar(progress_file: Path) -> str:
    """The latest state a text bar wrote to ``progress_file`` ("" if none yet)."""
    try:
        text = progress_file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    states = [s.strip() for s in re.split(r"[\r\n]", text) if s.strip()]
    return states[-1] if states else ""


class Ticker:
    """Shows the running notebook: elapsed time and its latest training bar (module doc)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self.start_all = time.perf_counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, name: str, position: int, total: int, progress_file: Path) -> None:
        self.head = f"[{position}/{total}] {name}"
        self.expected = EXPECTED_SECONDS.get(name)
        self.progress_file, self.t0 = progress_file, time.perf_counter()
        if not self.live:
            self._print(f"{self.head} ...")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def done(self, run: NotebookRun) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        status = "ok" if run.ok else "FAILED"
        total = time.perf_counter() - self.start_all
        line = f"{self.head:<40} {run.seconds:6.0f} s  {status:<6} (all so far {_clock(total)})"
        self._print(("\r\x1b[K" if self.live else "") + line)
        if run.error:
            self._print("    " + run.error.splitlines()[0])

    def _loop(self) -> None:
        shown, last_print = "", time.perf_counter()
        while not self._stop.wait(1.0):
            elapsed = time.perf_counter() - self.t0
            bar = last_bar(self.progress_file)
            if self.live:
                width = shutil.get_terminal_size((100, 20)).columns
                line = f"{self.head}  {_clock(elapsed)}  {bar}"[: width - 1]
                self.stream.write("\r\x1b[K" + line)
                self.stream.flush()
            elif time.perf_counter() - last_print >= LOG_EVERY_S and (bar != shown or not bar):
                self._print(f"    {_clock(elapsed)}  {bar or 'running'}")
                shown, last_print = bar, time.perf_counter()

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


def format_summary(runs: list[NotebookRun]) -> str:
    """The rows of :data:`SUMMARY` whose notebooks ran, as an aligned table with units."""
    records = {r.name: r.records for r in runs}
    rows = []
    for name, what, keys in SUMMARY:
        values = records.get(name, {})
        if not all(k in values for k in keys):
            continue
        shown = " / ".join(format_value(values[k], unit_of(k)) for k in keys)
        rows.append((name[:2], what, shown))
    if not rows:
        return "(no summary values recorded)"
    width = max(len(w) for _, w, _ in rows)
    lines = [f"{'nb':<3} {'what':<{width}}  value", f"{'-' * 3} {'-' * width}  {'-' * 24}"]
    lines += [f"{nb:<3} {what:<{width}}  {shown}" for nb, what, shown in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m mmslim.tutorial.demo",
        description="Run every notebook headlessly, in order (what make demo runs).",
    )
    p.add_argument("--out", type=Path, help="run folder (default runs/<YYYYmmdd-HHMMSS>)")
    p.add_argument(
        "--only", nargs="+", metavar="NN", help="notebooks to run, by number or name, e.g. 00 04"
    )
    p.add_argument(
        "--scale",
        choices=sorted(SCALES),
        default="cpu",
        help="parameter set: cpu (the notebooks' defaults, 2 CPU cores), paper (the reference "
        "recipe, for a GPU), fast (the tests' smallest)",
    )
    p.add_argument("--stop-on-error", action="store_true", help="stop at the first failure")
    args = p.parse_args(argv)

    out = args.out or repo_root() / "runs" / time.strftime("%Y%m%d-%H%M%S")
    available = list_notebooks()
    names = available
    if args.only:
        names = [n for n in available if any(n.startswith(s) for s in args.only)]
        if not names:
            p.error(f"no notebook matches {args.only}; choose from {', '.join(available)}")
    print(f"running {len(names)} notebooks at the {args.scale} scale into {out}")
    print(expected_line(names, args.scale), flush=True)
    ticker = Ticker()
    runs = run_notebooks(
        out,
        names,
        parameters=SCALES[args.scale],
        stop_on_error=args.stop_on_error,
        on_start=ticker.start,
        on_done=ticker.done,
    )
    failed = [r.name for r in runs if not r.ok]
    elapsed = time.perf_counter() - ticker.start_all
    print(f"\n{len(runs) - len(failed)}/{len(runs)} notebooks ok in {_clock(elapsed)} (min:s)\n")
    print(format_summary(runs))
    print(
        f"\nexecuted notebooks: {out}/NN_*.ipynb (open them in JupyterLab: make lab, or "
        f"jupyter lab {out})\nfigures: {out / 'figures'}   recorded values: {out / 'records'}"
    )
    for run in runs:
        if run.error:
            print(f"\n--- {run.name} failed ---\n{run.error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
