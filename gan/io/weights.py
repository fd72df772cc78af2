"""Put a state dict read from a file into one of our networks, with clear errors."""

from __future__ import annotations

import torch

from gan.errors import ModelLoadError


def _listing(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def load_weights(net: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Copy `state` into `net` (strict: same names and shapes). `what` names the network and
    file in error messages, e.g. "G_ema in model.pkl"."""
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k} (file {tuple(state[k].shape)}, expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing tensors: {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors: {_listing(unexpected)}")
    if wrong:
        problems.append(f"wrong shapes: {_listing(wrong, 3)}")
    if problems:
        raise ModelLoadError(
            f"the weights of {what} do not fit the network its settings describe ({'; '.join(problems)}). "
            "The file is damaged or was written by a different network implementation."
        )
    net.load_state_dict(state, strict=True)  # copy_ converts dtypes (e.g. float16 files)
