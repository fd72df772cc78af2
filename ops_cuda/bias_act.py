"""Bias add + activation + gain + clamp in one op (StyleGAN2/3 `bias_act` semantics)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ops_cuda._dispatch import get_registry


@dataclass(frozen=True)
class ActivationSpec:
    func: Callable[[torch.Tensor, float], torch.Tensor]
    def_alpha: float  # used by lrelu only
    def_gain: float  # keeps the signal magnitude roughly constant for unit-variance inputs


ACTIVATIONS: dict[str, ActivationSpec] = {
    "linear": ActivationSpec(lambda x, _a: x, 0.0, 1.0),
    "relu": ActivationSpec(lambda x, _a: F.relu(x), 0.0, math.sqrt(2)),
    "lrelu": ActivationSpec(lambda x, a: F.leaky_relu(x, a), 0.2, math.sqrt(2)),
    "tanh": ActivationSpec(lambda x, _a: torch.tanh(x), 0.0, 1.0),
    "sigmoid": ActivationSpec(lambda x, _a: torch.sigmoid(x), 0.0, 1.0),
    "elu": ActivationSpec(lambda x, _a: F.elu(x), 0.0, 1.0),
    "selu": ActivationSpec(lambda x, _a: F.selu(x), 0.0, 1.0),
    "softplus": ActivationSpec(lambda x, _a: F.softplus(x), 0.0, 1.0),
    "swish": ActivationSpec(lambda x, _a: torch.sigmoid(x) * x, 0.0, math.sqrt(2)),
}


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
    impl: str = "auto",
) -> torch.Tensor:
    """y = clamp(act(x + b) * gain, -clamp, clamp); b is broadcast along `dim`.

    alpha/gain None take the activation's defaults; clamp None disables clamping.
    """
    if act not in ACTIVATIONS:
        raise ValueError(f"bias_act: unknown act {act!r}; expected one of {list(ACTIVATIONS)}")
    if clamp is not None and clamp < 0:
        raise ValueError(f"bias_act: clamp must be None or >= 0, got {clamp}")
    if b is not None:
        if b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f"bias_act: b has shape {tuple(b.shape)}, expected ({x.shape[dim]},)")
    spec = ACTIVATIONS[act]
    alpha = float(spec.def_alpha if alpha is None else alpha)
    gain = float(spec.def_gain if gain is None else gain)
    clamp = None if clamp is None else float(clamp)
    fn = get_registry().resolve("bias_act", impl, x.device)
    return fn(x, b, dim, act, alpha, gain, clamp)


def bias_act_ref(
    x: torch.Tensor,
    b: torch.Tensor | None,
    dim: int,
    act: str,
    alpha: float,
    gain: float,
    clamp: float | None,
) -> torch.Tensor:
    """Reference; arguments already validated (alpha, gain floats; clamp float or None)."""
    if b is not None:
        shape = [-1 if i == dim % x.ndim else 1 for i in range(x.ndim)]
        x = x + b.reshape(shape)
    x = ACTIVATIONS[act].func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x
