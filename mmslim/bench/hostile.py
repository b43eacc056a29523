"""Hostile files, measured: what ``decompress_maps`` does with corrupted and crafted ``.mmsl``
files from a real model.

    python -m mmslim.bench.hostile [--checkpoint CKPT] [--mutations 15000] [--seed 0]

Prints, for the checkpoint's model (the shipped amplitude model by default):

- **mutations**: seeded corruptions of real files (bit flips, overwrites, insertions, deletions,
  truncations, header and frame-length fields grown, frames dropped, duplicated or reordered),
  almost all with the CRC recomputed so that they reach the parser and the decoders; how each
  ended (refused with ``BitstreamError``, decoded to the original's shape, anything else) and the
  distinct exception types seen;
- **crafted files**: decompression bombs (grid sizes grown behind a tiny ANS payload, 4 and
  16 MB frames in the prefix-code modes, a huge frame count), each decoded in its own process:
  accepted or not, output size against the size the header's model implies (N frames of the
  model's 224 x 64), and peak memory growth minus the output (what ``decompress_maps`` returns:
  the maps, the index grids and the side info);
- the same measured for two valid files of at most 1 MB (the most frames a megabyte holds).

Figures, not pass/fail: the fuzz test in ``tests/codec`` asserts the outcomes on a small budget.
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mmslim.codec.container import HEADER, LENGTH, SEQUENCE, SIDE_DTYPES, read_header

# (offset, struct format) of each header field an attacker may grow: N, K, first sequence, H, W,
# h1, w1, h2, w2
HEADER_FIELDS = [(20, "<I"), (24, "<I"), (28, "<I")] + [(32 + 2 * i, "<H") for i in range(6)]
MUTATIONS = ("flip", "overwrite", "insert", "delete", "truncate", "field", "length", "frames")


def reseal(body: bytes) -> bytes:
    """``body`` (a file without its CRC) with a correct CRC appended."""
    return body + struct.pack("<I", zlib.crc32(body))


def record_spans(data: bytes) -> list[tuple[int, int, int]]:
    """(start, end, offset of the length field) of each frame record of a valid file."""
    header = read_header(data)
    side = 2 * np.dtype(SIDE_DTYPES[header.side_dtype]).itemsize
    fixed = SEQUENCE.size + side + LENGTH.size
    spans, offset = [], HEADER.size
    for size in header.frame_bytes:
        spans.append((offset, offset + fixed + size, offset + SEQUENCE.size + side))
        offset += fixed + size
    return spans


def mutations(data: bytes, count: int, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """``count`` seeded corruptions of the valid file ``data``: (kind, bytes). All but half of
    the ``truncate`` ones have the CRC recomputed. ``frames`` drops (never the last frame: a
    file cut at a frame boundary with N edited is a valid shorter file, which only the next
    file's first sequence number or an HMAC tag reveals), duplicates or swaps frame records, and
    fixes N."""
    rng = np.random.default_rng(seed)
    body, spans = data[:-4], record_spans(data)
    for i in range(count):
        kind = MUTATIONS[i % len(MUTATIONS)]
        out = bytearray(body)
        at = int(rng.integers(5, len(body)))  # past magic and version
        if kind == "flip":
            for bit in rng.integers(40, 8 * len(body), size=int(rng.integers(1, 4))):
                out[bit // 8] ^= 1 << (bit % 8)
        elif kind == "overwrite":
            out[at : at + 6] = rng.bytes(int(rng.integers(1, 7)))
        elif kind == "insert":
            out[at:at] = rng.bytes(int(rng.integers(1, 64)))
        elif kind == "delete":
            del out[at : at + int(rng.integers(1, 64))]
        elif kind == "truncate":
            cut = bytes(data[: int(rng.integers(0, len(data)))])
            yield kind, (reseal(cut[:-4]) if rng.random() < 0.5 and len(cut) > 4 else cut)
            continue
        elif kind in ("field", "length"):
            if kind == "field":
                offset, fmt = HEADER_FIELDS[int(rng.integers(len(HEADER_FIELDS)))]
            else:
                offset, fmt = spans[int(rng.integers(len(spans)))][2], "<I"
            old = struct.unpack_from(fmt, out, offset)[0]
            struct.pack_into(fmt, out, offset, _grown(rng, old, fmt))
        elif len(spans) > 1:  # frames
            records = [bytes(body[s:e]) for s, e, _ in spans]
            j = int(rng.integers(0, len(records) - 1))
            action = int(rng.integers(3))
            if action == 0:
                del records[j]
            elif action == 1:
                records.insert(j, records[j])
            else:
                records[j], records[j + 1] = records[j + 1], records[j]
            tail = body[spans[-1][1] :]  # the HMAC tag, if any
            out = bytearray(body[: HEADER.size]) + b"".join(records) + tail
            struct.pack_into("<I", out, 20, len(records))
        yield kind, reseal(bytes(out))


def _grown(rng: np.random.Generator, old: int, fmt: str) -> int:
    """A new value for an integer field: grown, shrunk, extreme or random."""
    top = 2 ** (8 * struct.calcsize(fmt)) - 1
    choices = (old + 1, old * 2, old * 16, old * 1000, top, 0, 1, int(rng.integers(0, top)))
    return min(top, max(0, int(choices[int(rng.integers(len(choices)))])))


# ---------------------------------------------------------------- decoding them


def outcome(model, data: bytes, reference_shape: tuple, **kwargs) -> str:
    """How ``decompress_maps`` ends on ``data``: "refused" (BitstreamError), "same shape" (the
    original's), "shape (..)" (another), or "escaped <Type>" (any other exception)."""
    from mmslim.codec import BitstreamError
    from mmslim.codec.maps import decompress_maps

    try:
        maps, _ = decompress_maps(model, data, **kwargs)
    except BitstreamError:
        return "refused"
    except Exception as err:  # what the fuzz is looking for
        return f"escaped {type(err).__name__}"
    return "same shape" if maps.shape == tuple(reference_shape) else f"shape {maps.shape}"


def fuzz(model, files: dict[str, tuple[bytes, dict]], count: int, seed: int = 0) -> dict:
    """Mutate each valid file ``count`` times and decode every mutation.

    files: name -> (valid file, keyword arguments of decompress_maps for it).
    Returns {"cases", "outcomes": {outcome: n}, "by_kind": {kind: {outcome: n}},
    "exception_types": [...], "max_seconds": slowest case}.
    """
    outcomes, by_kind, slowest = Counter(), {}, 0.0
    for index, (data, kwargs) in enumerate(files.values()):
        header = read_header(data)
        shape = (header.num_frames, *header.frame_shape)
        assert outcome(model, data, shape, **kwargs) == "same shape", "a valid file is refused"
        for kind, mutated in mutations(data, count, seed + index):
            start = time.perf_counter()
            result = outcome(model, mutated, shape, **kwargs)
            slowest = max(slowest, time.perf_counter() - start)
            outcomes[result] += 1
            by_kind.setdefault(kind, Counter())[result] += 1
    escaped = {o.split()[1] for o in outcomes if o.startswith("escaped")}
    types = sorted(escaped | ({"BitstreamError"} if outcomes["refused"] else set()))
    return {
        "cases": sum(outcomes.values()),
        "outcomes": dict(outcomes),
        "by_kind": {k: dict(v) for k, v in by_kind.items()},
        "exception_types": types,
        "max_seconds": slowest,
    }


# ---------------------------------------------------------------- crafted files


def crafted_files(model, valid: dict[str, bytes]) -> dict[str, bytes]:
    """Decompression bombs against ``model`` (224 x 64 frames), and two valid files of at most
    1 MB for comparison. valid: mode -> a valid file of that model."""
    fp, k = model.fingerprint(), model.config.num_codes

    def file(mode: int, n: int, shapes, payloads: list[bytes]) -> bytes:
        head = HEADER.pack(b"MMSL", 2, mode, 0, 0, 0, bytes(3), fp, n, k, 0, *shapes)
        side = struct.pack("<2f", 0.0, 60.0)
        records = [
            SEQUENCE.pack(i) + side + LENGTH.pack(len(p)) + p for i, p in enumerate(payloads)
        ]
        return reseal(head + b"".join(records))

    huge = (7936, 1984, 1984, 496, 496, 124)  # 62 x the frame area of 224 x 64
    normal = (224, 64, 56, 16, 14, 4)
    wide = (224, 64, 56, 16 * 124, 14, 4)  # a frame shape that fits, grids that do not
    bombs = {
        "ans, 1 frame of 7936 x 1984, empty payload": file(2, 1, huge, [b""]),
        "ans, 4 frames of 7936 x 1984, one word each": file(2, 4, huge, [b"\1\0\0\0"] * 4),
        "ans, 224 x 64 frame with 124x wider hi grid": file(2, 1, wide, [b""]),
        "fixed, 224 x 64 frame, 4 MB payload": file(0, 1, normal, [bytes(1 << 22)]),
        "huffman, 224 x 64 frame, 4 MB payload": file(1, 1, normal, [bytes(1 << 22)]),
        "huffman, 224 x 64 frame, 16 MB payload": file(1, 1, normal, [bytes(1 << 24)]),
        "a 4-frame file claiming N = 2**32 - 1": edit(valid["ans"], 20, "<I", 2**32 - 1),
    }
    one_mb = (1 << 20) // (len(valid["fixed"]) // read_header(valid["fixed"]).num_frames)
    bombs["valid: fixed, the most 224 x 64 frames 1 MB holds"] = _repeat(valid["fixed"], one_mb)
    if model.prior.is_fitted:  # all-zero frames cost an empty ANS payload: 14 bytes each
        bombs["valid: ans, 4000 all-zero frames (56 kB)"] = file(2, 4000, normal, [b""] * 4000)
    return bombs


def edit(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    body = bytearray(data[:-4])
    struct.pack_into(fmt, body, offset, value)
    return reseal(bytes(body))


def _repeat(data: bytes, frames: int) -> bytes:
    """A valid file of ``frames`` frames, cycling through those of ``data``."""
    spans = record_spans(data)
    records = []
    for i in range(frames):
        start, end, _ = spans[i % len(spans)]
        record = bytearray(data[start:end])
        SEQUENCE.pack_into(record, 0, i & 0xFFFF)
        records.append(bytes(record))
    head = bytearray(data[: HEADER.size])
    struct.pack_into("<I", head, 20, frames)
    return reseal(bytes(head) + b"".join(records))


def measure(checkpoint: Path, path: Path) -> dict:
    """Decode ``path`` with ``checkpoint``'s model in a fresh process: outcome, frames the
    header claims, output bytes, peak memory growth (the peak resident size, reset just before
    decoding, over the resident size then) and seconds."""
    code = (
        "import json, sys; from mmslim.bench.hostile import _measure_here; "
        "print(json.dumps(_measure_here(sys.argv[1], sys.argv[2])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(checkpoint), str(path)], capture_output=True, text=True
    )
    if done.returncode:
        return {"outcome": f"process died ({done.returncode}): {done.stderr[-300:]}"}
    return json.loads(done.stdout.splitlines()[-1])


def _measure_here(checkpoint: str, path: str) -> dict:
    import torch

    from mmslim.codec import BitstreamError
    from mmslim.codec.maps import decompress_maps
    from mmslim.training.checkpoint import load_model

    torch.set_num_threads(1)
    model, state = load_model(checkpoint)
    data = Path(path).read_bytes()
    # a valid file first, so that one-off allocations (torch kernels) are not counted
    decompress_maps(model, Path(path).with_name("valid.mmsl").read_bytes())
    before = _reset_peak_memory()
    start = time.perf_counter()
    result = {"file_bytes": len(data), "claimed_frames": struct.unpack_from("<I", data, 20)[0]}
    try:
        maps, decoded = decompress_maps(model, data, kind=state["stage"])
        arrays = (maps, decoded.indices_hi, decoded.indices_lo, decoded.side)
        result.update(outcome="decoded", output_bytes=sum(a.nbytes for a in arrays))
    except BitstreamError as err:
        result.update(outcome=f"refused ({err.field})", output_bytes=0)
    except Exception as err:
        result.update(outcome=f"escaped {type(err).__name__}", output_bytes=0)
    peak = _memory_kib("VmHWM") * 1024
    result.update(growth_bytes=max(0, peak - before), seconds=time.perf_counter() - start)
    return result


def _memory_kib(field: str) -> int:
    """A ``/proc/self/status`` memory figure (VmRSS, VmHWM) in KiB."""
    for line in open("/proc/self/status").read().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field} (Linux only)")


def _reset_peak_memory() -> int:
    """Reset the peak resident size (VmHWM) to the current one (Linux: ``clear_refs`` 5);
    returns the current resident size in bytes."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _memory_kib("VmRSS") * 1024


# ---------------------------------------------------------------- the figures


def main(argv: list[str] | None = None) -> None:
    import tempfile

    from mmslim.codec.maps import compress_maps
    from mmslim.data.dataset import load_frames
    from mmslim.data.samples import sample_path
    from mmslim.training.checkpoint import load_model

    p = argparse.ArgumentParser(prog="python -m mmslim.bench.hostile", description=__doc__)
    p.add_argument("--checkpoint", type=Path, default=sample_path("pretrained", "amplitude.pt"))
    p.add_argument("--mutations", type=int, default=15000, help="in all, over the three modes")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    model, state = load_model(args.checkpoint)
    maps = load_frames(sample_path("sample.npz")).amplitude[:4]  # (4, 224, 64) dB
    kind = state["stage"]
    valid = {mode: compress_maps(model, maps, kind, mode) for mode in ("fixed", "huffman", "ans")}
    files = {mode: (data, {"kind": kind}) for mode, data in valid.items()}
    report = fuzz(model, files, args.mutations // len(files), args.seed)
    print(f"mutations of 4-frame files from {args.checkpoint}: {report['cases']}")
    for result, n in sorted(report["outcomes"].items()):
        print(f"  {result:<28} {n}")
    print(
        f"  exception types out of decompress_maps: {len(report['exception_types'])} "
        f"({', '.join(report['exception_types'])})"
    )
    print(f"  slowest case: {report['max_seconds']:.3f} s")
    frames = report["by_kind"]["frames"]
    print(
        f"  frames dropped/duplicated/reordered, CRC recomputed, accepted: "
        f"{sum(n for o, n in frames.items() if o != 'refused')} of {sum(frames.values())}"
    )

    frame_bytes = 224 * 64 * 4
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "valid.mmsl").write_bytes(valid["ans"])
        print("\ncrafted files (each decoded in its own process):")
        over, worst = 0, 0
        for name, data in crafted_files(model, valid).items():
            path = Path(tmp) / "case.mmsl"
            path.write_bytes(data)
            r = measure(args.checkpoint, path)
            extra = r.get("growth_bytes", 0) - r.get("output_bytes", 0)
            implied = r.get("claimed_frames", 0) * frame_bytes
            over += r.get("output_bytes", 0) > 2 * implied
            if len(data) <= 1 << 20:
                worst = max(worst, extra)
            print(
                f"  {name:<52} {len(data):>9} B  {r['outcome']:<28} "
                f"output {r.get('output_bytes', 0) / 2**20:8.1f} MiB  "
                f"peak - output {extra / 2**20:6.1f} MiB  {r.get('seconds', 0):6.2f} s"
            )
    print(f"\ncrafted files decoding to > 2x the size their header's model implies: {over}")
    print(f"peak decode memory beyond the output, files <= 1 MB: {worst / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
