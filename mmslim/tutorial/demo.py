"""``python -m mmslim.tutorial.demo`` (``make demo``): every notebook, headlessly, in order.

Executed notebooks, figures, recorded values and checkpoints go to ``runs/<YYYYmmdd-HHMMSS>/``
(layout in :mod:`mmslim.tutorial.runner`). One progress line per notebook, then the recorded values.
The notebooks' own defaults are used (they finish on 2 CPU cores); ``--fast`` uses the tests'
smaller settings. Exit status 1 if a notebook failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mmslim.tutorial.runner import NotebookRun, list_notebooks, repo_root, run_notebooks


def _progress(run: NotebookRun) -> None:
    status = "ok" if run.ok else "FAILED"
    print(f"{run.name:<32} {run.seconds:7.1f} s  {status}", flush=True)
    if run.error:
        print("    " + run.error.splitlines()[0], flush=True)


def format_summary(runs: list[NotebookRun]) -> str:
    """The recorded values of every notebook, one per line."""
    lines = []
    for run in runs:
        lines.append(f"{run.name}:")
        for key, value in run.records.items():
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            lines.append(f"    {key:<34} {shown}")
        if not run.records:
            lines.append("    (nothing recorded)")
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
    p.add_argument("--fast", action="store_true", help="the tests' smaller settings")
    p.add_argument("--stop-on-error", action="store_true", help="stop at the first failure")
    args = p.parse_args(argv)

    out = args.out or repo_root() / "runs" / time.strftime("%Y%m%d-%H%M%S")
    names = None
    if args.only:
        available = list_notebooks()
        names = [n for n in available if any(n.startswith(s) for s in args.only)]
        if not names:
            p.error(f"no notebook matches {args.only}; choose from {', '.join(available)}")
    print(f"running notebooks into {out}", flush=True)
    start = time.perf_counter()
    runs = run_notebooks(
        out, names, fast=args.fast, stop_on_error=args.stop_on_error, on_done=_progress
    )
    failed = [r.name for r in runs if not r.ok]
    print(f"\n{len(runs) - len(failed)}/{len(runs)} notebooks ok in "
          f"{time.perf_counter() - start:.0f} s\n")  # fmt: skip
    print(format_summary(runs))
    print(f"\nexecuted notebooks and figures: {out}")
    for run in runs:
        if run.error:
            print(f"\n--- {run.name} failed ---\n{run.error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
