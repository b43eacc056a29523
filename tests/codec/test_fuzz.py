"""Seeded fuzzing of the golden files through ``decompress_maps``, in a subprocess whose address
space is capped (``RLIMIT_AS``): a decompression bomb fails this test instead of the machine.

Every mutation (bit flips, overwrites, insertions, deletions, truncations, header fields and frame
lengths grown, frames dropped, duplicated or swapped; the CRC recomputed so that each reaches the
parser and the decoders, see ``mmslim.bench.hostile.mutations``) must end in ``BitstreamError`` or
decode to the original's shape.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

MUTATIONS_PER_FILE = 750  # x 4 golden files: 3000 cases, a few seconds
MEMORY_BUDGET = 512 * 2**20  # bytes of address space over what the worker holds before fuzzing
SECONDS_PER_CASE = 20.0  # far above any real case (milliseconds); a bomb took 8 to 48 s

WORKER = f"""
import json, resource, sys
import torch
torch.set_num_threads(1)
from mmslim.bench.hostile import fuzz
from mmslim.training.checkpoint import load_model
from tests.codec.golden_files import CASES, FRAME_SHAPE, GOLDEN

model = load_model(GOLDEN / "model.pt")[0]
files = {{
    name: ((GOLDEN / (name + ".mmsl")).read_bytes(),
           {{"kind": "amplitude", "frame_shape": FRAME_SHAPE, "key": key}})
    for name, (mode, key, first) in CASES.items()
}}
fuzz(model, files, 2)  # warm up: what a first decode allocates once is not the budget's
size = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (size + {MEMORY_BUDGET}, resource.RLIM_INFINITY))
print(json.dumps(fuzz(model, files, {MUTATIONS_PER_FILE}, seed=1)))
"""


def test_mutated_files_end_in_bitstream_error_or_the_original_shape():
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", WORKER],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=root,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["cases"] == 4 * MUTATIONS_PER_FILE
    assert set(report["outcomes"]) <= {"refused", "same shape"}, report["outcomes"]
    assert report["exception_types"] == ["BitstreamError"]
    assert report["max_seconds"] < SECONDS_PER_CASE
    frames = report["by_kind"]["frames"]  # dropped, duplicated or swapped frames
    assert set(frames) == {"refused"}, frames
    for kind in ("field", "length", "truncate"):  # grown fields and cut files reach the checks
        assert report["by_kind"][kind].get("refused", 0) > 0
