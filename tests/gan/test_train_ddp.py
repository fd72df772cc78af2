"""Two CPU processes (gloo, env:// rendezvous on localhost, as torchrun sets it up) train a tiny
StyleGAN2 through `gan.train.loop.run`; their parameters stay identical and only rank 0 writes."""

from __future__ import annotations

import os
import socket

import numpy as np
import torch
import torch.multiprocessing as mp

from gan.data.dataset_tool import DatasetWriter
from tests.support.tiny import tiny_train_config

WORLD = 2
STEPS = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(data: str, outdir: str):
    return tiny_train_config(
        data,
        outdir,
        kimg=1,
        tick_kimg=0.016,
        snap=100,
        aug="ada",
        seed=3,
        r1_interval=2,
        g_reg_interval=2,  # both lazy regularisers run within the few steps
    )


def _worker(rank: int, port: int, data: str, outdir: str, results: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    from gan.train import loop

    original = loop._Trainer.train

    def train_and_dump(self, should_stop, on_tick):
        # Stop after STEPS whole steps (should_stop is also polled between the phases of a step).
        summary = original(self, lambda: self.cur_nimg >= STEPS * 8, on_tick)
        nets = {"G": self.G, "D": self.D, "G_ema": self.G_ema}
        weights = {
            f"{k}.{n}": t.detach().clone() for k, net in nets.items() for n, t in net.state_dict().items()
        }
        weights["augment_p"] = self.augment_pipe.p.detach().clone()
        torch.save(weights, os.path.join(results, f"rank{rank}.pt"))
        return summary

    loop._Trainer.train = train_and_dump
    summary = loop.run(_config(data, outdir))
    with open(os.path.join(results, f"summary{rank}.txt"), "w") as f:
        f.write(f"{summary.reason} {summary.kimg} {summary.run_dir}")


def test_two_processes_keep_identical_parameters(tmp_path):
    rng = np.random.default_rng(0)
    with DatasetWriter(tmp_path / "data.zip") as writer:
        for _ in range(32):
            writer.add(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    outdir, results = tmp_path / "runs", tmp_path / "results"
    results.mkdir()
    mp.spawn(
        _worker,
        args=(_free_port(), str(tmp_path / "data.zip"), str(outdir), str(results)),
        nprocs=WORLD,
        join=True,
    )
    w0 = torch.load(results / "rank0.pt", weights_only=True)
    w1 = torch.load(results / "rank1.pt", weights_only=True)
    assert w0.keys() == w1.keys()
    different = [k for k in w0 if not torch.equal(w0[k], w1[k])]
    assert not different, different[:5]

    # Both ranks stopped at the same total kimg (8 images per step over both processes).
    s0 = (results / "summary0.txt").read_text().split()
    s1 = (results / "summary1.txt").read_text().split()
    assert s0[:2] == s1[:2] == ["stopped", str(STEPS * 8 / 1000)]
    # Training changed the weights, and only rank 0 wrote a run folder.
    from gan.train.prepare import build_networks, prepare

    torch.manual_seed(3)
    G0, _D0 = build_networks(
        prepare(_config(str(tmp_path / "data.zip"), str(outdir)), world_size=2).resolved, "cpu"
    )
    assert any(not torch.equal(t, w0[f"G.{n}"]) for n, t in G0.state_dict().items())
    assert [p.name for p in outdir.iterdir()] == [os.path.basename(s0[2])] and s1[2:] == []
