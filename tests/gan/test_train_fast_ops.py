"""Training with the fast ops gives the losses and gradients of the reference ops: every phase of a
training step (G main, G path length, D main, D R1) on one fixed batch, from identical weights and
random draws, for each architecture (tiny networks, the loop's own builders and loss)."""

from __future__ import annotations

import pytest
import torch

import ops_cuda
from bench.train_step import StepSpec, build, phases_of

TINY = dict(res=16, cbase=512, cmax=16, z_dim=16, w_dim=16, batch=2, gamma=1.0, augment_p=0.5)


def _phase(s, phase: str, impl: str, seed: int) -> tuple[float, dict[str, torch.Tensor]]:
    """Loss and parameter gradients of one phase (no optimizer step)."""
    net = s.G if phase[0] == "G" else s.D
    torch.manual_seed(seed)
    z = torch.randn([s.real.shape[0], s.G.z_dim])
    c = s.real_c
    net.requires_grad_(True)
    for p in net.parameters():
        p.grad = None
    with ops_cuda.prefer_impl(impl):
        if phase == "Gmain":
            loss = s.loss.g_main(z, c, 1.0, 0)
        elif phase == "Greg":
            loss = s.loss.g_reg(z, c, 1.0)
        elif phase == "Dmain":
            loss = s.loss.d_main(s.real, c, z, c, 1.0, 0)
        else:
            loss = s.loss.d_reg(s.real, c, 1.0, 0)
    net.requires_grad_(False)
    grads = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    return float(loss), grads


@pytest.mark.parametrize("cfg", ["stylegan2", "stylegan3-t", "stylegan3-r"])
def test_every_phase_has_the_reference_losses_and_gradients(cfg):
    s = build(StepSpec(cfg=cfg, **TINY))
    phases = phases_of(s)
    assert phases[:2] == ["Gmain", "Greg"] if cfg == "stylegan2" else "Greg" not in phases
    assert "Dreg" in phases
    pl_mean = s.loss.pl_mean.clone()
    emas = {k: v.clone() for k, v in s.G.named_buffers()}
    for i, phase in enumerate(phases):
        results = {}
        for impl in ("ref", "auto"):
            s.loss.pl_mean.copy_(pl_mean)  # g_reg and the update_emas of D main change state
            for k, v in s.G.named_buffers():
                v.copy_(emas[k])
            results[impl] = _phase(s, phase, impl, seed=100 + i)
        (loss_ref, g_ref), (loss_auto, g_auto) = results["ref"], results["auto"]
        assert abs(loss_auto - loss_ref) <= 1e-4 * max(1.0, abs(loss_ref)), (phase, loss_auto, loss_ref)
        assert g_ref.keys() == g_auto.keys() and g_ref, phase
        for name in g_ref:
            scale = max(1e-3, g_ref[name].abs().max().item())
            diff = (g_auto[name] - g_ref[name]).abs().max().item()
            assert diff <= 1e-3 * scale, (phase, name, diff, scale)
