"""Training with several processes: two CPU ranks with Gloo, started as ``torchrun`` starts them.

One module-scoped job spawns two ranks (``torch.multiprocessing``, with the environment torchrun
sets) that train the tiny model twice: plain VQ, and the EMA + k-means + dead-code variant of
the quantizer zoo (dead codes re-seeded after 2 unused steps, so that it happens in a few
steps), then the phase stage; and that run the collective helpers on data that differs between
ranks. Each rank saves its own weights and buffers and every file it opened for writing.

The tests then check: weights and codebook state bit-identical on both ranks; the loss of a
one-process run with the same global batch; one checkpoint, written by rank 0 alone; the
helpers compute from all ranks' data; and ``mmslim train`` under ``torchrun``, killed after an
epoch and resumed, ends at the same weights as the uninterrupted two-rank run.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import mmslim
from mmslim.codec.maps import fit_prior
from mmslim.config import ModelConfig, TrainConfig
from mmslim.data.dataset import RadarFrames, load_frames, save_bundle
from mmslim.nn.quantizers import codebook_updates
from mmslim.nn.quantizers.codebook_init import init_codebook_shared, kmeans
from mmslim.nn.quantizers.codebook_updates import count_unused, ema_update, sample_rows_shared
from mmslim.nn.quantizers.zoo import variant_config
from mmslim.training import distributed
from mmslim.training.checkpoint import load_checkpoint, load_model
from mmslim.training.evaluate import evaluate
from mmslim.training.fit import rank_batch_size, train

WORLD = 2
TINY = ModelConfig.preset("tiny")
# What `mmslim train --preset tiny --epochs 2 --batch-size 8 --lr 2e-3` asks for.
RECIPE = TrainConfig.preset("tiny", epochs=2, batch_size=8, lr_hi=2e-3, lr_lo=2e-3, lr_mask=2e-3)
VARIANT = variant_config(TINY, "vq-ema-kmeans-dead", dead_code_steps=2)
# Two ranks compute the one-process model (BatchNorm uses the global batch's statistics) up to
# rounding, which Adam then amplifies: a conv bias before a BatchNorm has a gradient that is 0 up
# to rounding, and Adam turns it into a full +-lr step. So the first epoch's loss agrees to 1e-6
# (measured: 3e-7), and later epochs as the same one-process run on 1 or 2 threads does (measured:
# up to 1.2e-3 a step over 9 steps). Per-rank BatchNorm statistics moved the first step by 4.5e-4
# and the ninth by 5e-2.
FIRST_EPOCH_TOLERANCE = 1e-5
LOSS_TOLERANCE = 5e-3


# --------------------------------------------------------------------------- one process


def test_one_process_helpers_are_plain_calls():
    x = torch.arange(6.0).reshape(3, 2)
    y = x.clone()
    distributed.all_reduce_sum_(y)
    assert torch.equal(y, x)
    assert distributed.all_gather_rows(x) is x
    assert distributed.total_rows(x) == 3 and list(distributed.shard(5)) == [0, 1, 2, 3, 4]
    assert distributed.run_on_main(lambda a: a + 1, 1) == 2
    assert distributed.wrap(torch.nn.Linear(2, 2)).__class__ is torch.nn.Linear


def test_the_global_batch_must_split_evenly():
    assert rank_batch_size(32, 4) == 8
    with pytest.raises(ValueError, match="--batch-size 8 or a number of processes"):
        rank_batch_size(9, 2)


def test_ranks_share_each_global_batch_of_one_process():
    """With the sampler of fit.train, the two ranks' batches of each step are together the one
    process's batch of that step, and each epoch shows every frame once."""
    from torch.utils.data import DataLoader, DistributedSampler

    data, epoch, seed, batch = list(range(24)), 3, 7, 8

    def batches(world: int, rank: int) -> list[list[int]]:
        sampler = DistributedSampler(data, world, rank, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        return [b.tolist() for b in DataLoader(data, batch // world, sampler=sampler)]

    one = batches(1, 0)
    ranks = [batches(WORLD, r) for r in range(WORLD)]
    for step, whole in enumerate(one):
        assert sorted(whole) == sorted(ranks[0][step] + ranks[1][step])
    assert sorted(sum(one, [])) == data


# --------------------------------------------------------------------------- two ranks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_audit(out_root: Path, writes: list[str]):
    """An audit hook recording every file under ``out_root`` opened for writing."""
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def hook(event: str, args: tuple) -> None:
        if event != "open" or not isinstance(args[0], (str, os.PathLike)):
            return
        mode, flags = args[1], args[2]
        writing = any(c in mode for c in "wax+") if mode else bool((flags or 0) & write_flags)
        if writing and str(args[0]).startswith(str(out_root)):
            writes.append(str(args[0]))

    return hook


def _rank_main(rank: int, port: int, bundle: str, out: str, results: str) -> None:
    """One rank: the environment torchrun would set, then training and the helper checks."""
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    torch.set_num_threads(1)  # as torchrun's OMP_NUM_THREADS=1: runs comparable bit for bit
    out_root, results = Path(out), Path(results)
    writes: list[str] = []
    sys.addaudithook(_write_audit(out_root, writes))
    draws = []  # dead-code re-seeding calls (a spy around the real function)
    real = codebook_updates.sample_rows_shared
    codebook_updates.sample_rows_shared = lambda *a: draws.append(len(a[0])) or real(*a)

    dist.init_process_group("gloo")  # from the environment, as mmslim.training.distributed does
    saved = {}
    for name, config in (("plain", TINY), ("variant", VARIANT)):
        result = train("amplitude", bundle, out_root / name, config, RECIPE, device="cpu",
                       progress=False)  # fmt: skip
        saved[name] = result.model.state_dict()
        saved[f"{name}_history"] = result.history
    amp = out_root / "plain" / "amplitude.pt"
    result = train("phase", bundle, out_root / "phase", TINY, dataclasses.replace(RECIPE, epochs=1),
                   amplitude_checkpoint=amp, device="cpu", progress=False)  # fmt: skip
    saved["phase"] = result.model.state_dict()
    saved["helpers"] = _helper_checks(rank)
    saved["evaluate"] = _evaluations(amp, bundle)
    saved["dead_code_draws"] = len(draws)
    saved["writes"] = sorted(set(writes))
    dist.destroy_process_group()
    torch.save(saved, results / f"rank{rank}.pt")


EVAL_FRAMES = (1, 3)  # fewer frames than ranks (rank 1 gets none), and an uneven split (2 + 1)


def _evaluations(checkpoint: Path, bundle) -> dict[int, dict[str, float]]:
    """``evaluate`` of a trained model on the first 1 and 3 frames of ``bundle``: under two
    ranks each evaluates its share, and all must get the figures of all frames."""
    model, _ = load_model(checkpoint)
    frames = load_frames(bundle)
    return {n: evaluate(model, RadarFrames(frames.select(np.arange(n))), "amplitude", RECIPE)
            for n in EVAL_FRAMES}  # fmt: skip


def _helper_data():
    """Data for the helper checks: (flat (24, 3), indices (24,) in [0, 6), points (400, 2) in
    four clusters); each rank takes its half of each."""
    g = torch.Generator().manual_seed(0)
    flat = torch.randn(24, 3, generator=g)
    indices = torch.randint(0, 6, (24,), generator=g)
    indices[:12] = indices[:12] % 3  # rank 0 uses codes 0-2 only; rank 1 any of 0-5
    centres = torch.tensor([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0], [8.0, 8.0]])
    points = centres.repeat_interleave(100, 0) + 0.3 * torch.randn(400, 2, generator=g)
    return flat, indices, points[torch.randperm(400, generator=g)]


def _helper_checks(rank: int) -> dict:
    flat, indices, points = _helper_data()
    mine = slice(12 * rank, 12 * (rank + 1))
    codebook, size, total = torch.zeros(6, 3), torch.ones(6), torch.zeros(6, 3)
    ema_update(codebook, size, total, flat[mine], indices[mine], decay=0.9)
    unused = torch.zeros(6, dtype=torch.int64)
    count_unused(unused, indices[mine])
    half = points[200 * rank : 200 * (rank + 1) - 50 * rank]  # 200 and 150 rows: uneven
    codes = init_codebook_shared("kmeans", half, 4, torch.Generator().manual_seed(1))
    fresh = sample_rows_shared(flat[mine] + 100 * rank, 5, torch.Generator().manual_seed(2))
    try:
        distributed.run_on_main(_refuse_on_main)
    except ValueError as err:
        refusal = str(err)
    return {
        "ema": (codebook, size, total),
        "unused": unused,
        "kmeans": codes,
        "fresh": fresh,
        "refusal": refusal,
        "rows": distributed.all_gather_rows(torch.full((rank + 1, 2), float(rank))),
        "shared": distributed.run_on_main(lambda: f"from rank {distributed.rank()}"),
    }


def _refuse_on_main():
    raise ValueError(f"refused by rank {distributed.rank()}")


@pytest.fixture(scope="module")
def bundle(few_frames, tmp_path_factory) -> Path:
    """Four walkers, 4 frames per sequence: 24 training frames (3 steps of 8), 8 validation."""
    path = tmp_path_factory.mktemp("data") / "frames.npz"
    save_bundle(few_frames(4, 4), path)
    return path


@pytest.fixture(scope="module")
def two_ranks(bundle, tmp_path_factory) -> dict:
    """Both ranks' saved state; ``out`` is the folder they trained into."""
    out, results = tmp_path_factory.mktemp("ddp"), tmp_path_factory.mktemp("results")
    args = (_free_port(), str(bundle), str(out), str(results))
    mp.spawn(_rank_main, args=args, nprocs=WORLD, join=True)
    ranks = [torch.load(results / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    return {"ranks": ranks, "out": out}


def _assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs between ranks"


@pytest.mark.parametrize("run", ["plain", "variant", "phase"])
def test_weights_and_codebooks_are_bit_identical_on_both_ranks(two_ranks, run):
    r0, r1 = two_ranks["ranks"]
    _assert_identical(r0[run], r1[run])  # parameters and every buffer, codebook state included
    stage = "phase" if run == "phase" else "amplitude"
    checkpoint = load_checkpoint(two_ranks["out"] / run / f"{stage}.pt")
    _assert_identical(checkpoint["model"], r0[run])  # what rank 0 wrote is what both hold


def test_the_variant_really_synchronised_its_codebook_state(two_ranks):
    r0, r1 = two_ranks["ranks"]
    state = r0["variant"]
    for branch in ("hi", "lo"):
        assert bool(state[f"{branch}.quantizer.initialized"])  # k-means ran
        assert f"{branch}.quantizer.embed_sum" in state  # EMA statistics exist and matched
    # Dead codes were re-seeded, on both ranks the same number of times (else they would hang).
    assert r0["dead_code_draws"] > 0 and r0["dead_code_draws"] == r1["dead_code_draws"]


def test_entropy_prior_counts_every_training_frame_once(two_ranks, bundle):
    """Each rank coded its share of the training frames; the summed counts are those one
    process gets from the same model over the whole training split."""
    state = load_checkpoint(two_ranks["out"] / "plain" / "amplitude.pt")
    model, _ = load_model(two_ranks["out"] / "plain" / "amplitude.pt")
    frames = load_frames(bundle)
    fit_prior(model, RadarFrames(frames, state["split"]["train"]), "amplitude")
    for branch in ("hi", "lo"):
        assert torch.equal(state["model"][f"prior.counts_{branch}"], model.prior.counts(branch))


def test_loss_matches_one_process_with_the_same_global_batch(two_ranks, bundle, tmp_path):
    torch.set_num_threads(1)  # as each rank
    one = train("amplitude", bundle, tmp_path, TINY, RECIPE, device="cpu", progress=False)
    ddp = two_ranks["ranks"][0]["plain_history"]
    first = ddp[0]["train_loss"]
    assert first == pytest.approx(one.history[0]["train_loss"], abs=FIRST_EPOCH_TOLERANCE)
    for a, b in zip(one.history, ddp, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], abs=LOSS_TOLERANCE)
        assert b["val_loss"] == pytest.approx(a["val_loss"], abs=LOSS_TOLERANCE)
    # The two-rank history is the same on both ranks (metrics reduced across ranks).
    other = two_ranks["ranks"][1]["plain_history"]
    assert [r["val_loss"] for r in ddp] == [r["val_loss"] for r in other]
    assert [r["train_loss"] for r in ddp] == [r["train_loss"] for r in other]


def test_one_checkpoint_written_by_rank_zero_alone(two_ranks):
    out = two_ranks["out"]
    for run, stage in (("plain", "amplitude"), ("variant", "amplitude"), ("phase", "phase")):
        names = sorted(p.name for p in (out / run).iterdir())
        assert names == sorted([f"{stage}.pt", f"history_{stage}.csv"])  # no temporary left
    r0, r1 = two_ranks["ranks"]
    assert r1["writes"] == []
    assert r0["writes"] and all(Path(w).parent.parent == out for w in r0["writes"])


def test_helpers_compute_from_both_ranks_data(two_ranks):
    h0, h1 = (r["helpers"] for r in two_ranks["ranks"])
    flat, indices, points = _helper_data()
    # EMA of the whole batch, as one process would apply it.
    codebook, size, total = torch.zeros(6, 3), torch.ones(6), torch.zeros(6, 3)
    ema_update(codebook, size, total, flat, indices, decay=0.9)
    for got in (h0, h1):
        for a, b in zip(got["ema"], (codebook, size, total)):
            torch.testing.assert_close(a, b)
    assert torch.equal(h0["ema"][0], h1["ema"][0])
    # A code is unused only if no rank used it.
    expected = torch.ones(6, dtype=torch.int64)
    expected[indices.unique()] = 0
    assert torch.equal(h0["unused"], expected) and torch.equal(h1["unused"], expected)
    # k-means on both ranks' points (gathered in rank order), identical on both ranks.
    pool = torch.cat([points[:200], points[200:350]])
    torch.testing.assert_close(
        h0["kmeans"], kmeans(pool, 4, generator=torch.Generator().manual_seed(1))
    )
    assert torch.equal(h0["kmeans"], h1["kmeans"])
    # Re-seeding vectors: the same on both ranks, each a row of one rank's data.
    assert torch.equal(h0["fresh"], h1["fresh"])
    union = torch.cat([flat[:12], flat[12:] + 100])
    assert all((union - row).norm(dim=1).min() == 0 for row in h0["fresh"])
    assert torch.equal(h0["rows"], torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]))
    assert h0["refusal"] == h1["refusal"] == "refused by rank 0"
    assert h0["shared"] == h1["shared"] == "from rank 0"


def test_evaluate_gives_every_rank_the_figures_of_all_frames(two_ranks, bundle):
    alone = _evaluations(two_ranks["out"] / "plain" / "amplitude.pt", bundle)  # one process
    for n in EVAL_FRAMES:
        for rank, results in enumerate(two_ranks["ranks"]):
            got = results["evaluate"][n]
            assert got.keys() == alone[n].keys()
            for key, value in alone[n].items():
                assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-6), (n, rank, key)


# --------------------------------------------------------------------------- torchrun, killed


def _torchrun(bundle: Path, out: Path, *extra: str) -> subprocess.Popen:
    """`mmslim train` as a user starts it under torchrun, 2 CPU processes."""
    root = str(Path(mmslim.__file__).resolve().parent.parent)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={WORLD}", "-m", "mmslim", "train", "--stage", "amplitude",
        "--data", str(bundle), "--out", str(out), "--preset", "tiny", "--epochs",
        str(RECIPE.epochs), "--batch-size", str(RECIPE.batch_size), "--lr", "2e-3",
        "--device", "cpu", *extra,
    ]  # fmt: skip
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group: the kill reaches every rank
    )  # fmt: skip


def _descendants(pid: int) -> list[int]:
    """Processes below ``pid``, from /proc (torchrun starts each rank in its own session, so a
    signal to the launcher's process group does not reach them)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the ranks in /proc")
def test_torchrun_killed_after_an_epoch_resumes_to_the_same_weights(two_ranks, bundle, tmp_path):
    ckpt = tmp_path / "amplitude.pt"
    run = _torchrun(bundle, tmp_path)
    deadline = time.monotonic() + 300
    while not ckpt.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    for pid in [*_descendants(run.pid), run.pid]:  # both ranks and the launcher, mid-training
        os.kill(pid, signal.SIGKILL)
    log = run.communicate()[0]
    killed_at = load_checkpoint(ckpt)["epoch"]  # intact: checkpoints are written atomically
    assert 1 <= killed_at < RECIPE.epochs, log

    resumed = _torchrun(bundle, tmp_path, "--resume")
    log = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, log
    assert log.count("checkpoint:") == 1  # rank 0 alone reports
    state = load_checkpoint(ckpt)
    assert state["epoch"] == RECIPE.epochs
    _assert_identical(state["model"], two_ranks["ranks"][0]["plain"])
    straight = two_ranks["ranks"][0]["plain_history"]
    assert [r["train_loss"] for r in state["history"]] == [r["train_loss"] for r in straight]
