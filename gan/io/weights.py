"""Put a state dict read from a file into one of our networks, with clear errors."""

from __future__ import annotations

import torch

from gan.errors import ModelLoadError

# safetensors dtype names a floating-point network tensor may be stored as (converted on load).
FLOAT_FILE_DTYPES = frozenset({"F16", "BF16", "F32", "F64"})
_FILE_DTYPE = {
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def _listing(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_layout(net: torch.nn.Module, shapes: dict[str, tuple[int, ...]], what: str) -> None:
    """Raise ModelLoadError unless a file's tensor names and shapes are exactly those of `net`
    (checked before any tensor data is read)."""
    expected = net.state_dict()
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    wrong = [
        f"{k} (file {tuple(shapes[k])}, expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in shapes and tuple(shapes[k]) != tuple(v.shape)
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


def check_file_dtypes(net: torch.nn.Module, dtypes: dict[str, str], what: str) -> None:
    """Raise ModelLoadError when a tensor is stored with a dtype that cannot hold the network's
    values (e.g. I32 where float weights belong): reinterpreted, such data renders garbage.
    dtypes: the file's safetensors dtype names by tensor name."""
    wrong = []
    for name, tensor in net.state_dict().items():
        stored = dtypes.get(name)
        if stored is None:
            continue
        if tensor.is_floating_point():
            ok = stored in FLOAT_FILE_DTYPES
        else:
            ok = stored == _FILE_DTYPE.get(tensor.dtype)
        if not ok:
            kind = "floating point" if tensor.is_floating_point() else str(tensor.dtype).replace("torch.", "")
            wrong.append(f"{name} ({stored}, expected {kind})")
    if wrong:
        raise ModelLoadError(
            f"the weights of {what} are stored with the wrong number type: {_listing(wrong, 3)}. "
            "The file is damaged or was not written by this program; re-create it."
        )


def check_finite(state: dict[str, torch.Tensor], what: str) -> None:
    """Raise ModelLoadError when a floating-point tensor holds NaN or infinity (such a model
    renders black or noise)."""
    bad = [n for n, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise ModelLoadError(
            f"the weights of {what} hold NaN or infinite values ({_listing(bad)}). The training run "
            "diverged before this file was written, or the file is damaged; use an earlier snapshot."
        )


def load_weights(net: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Copy `state` into `net` (strict: same names and shapes). `what` names the network and
    file in error messages, e.g. "G_ema in model.pkl"."""
    check_layout(net, {k: tuple(v.shape) for k, v in state.items()}, what)
    net.load_state_dict(state, strict=True)  # copy_ converts dtypes (e.g. float16 files)
