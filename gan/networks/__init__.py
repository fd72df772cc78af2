"""Network factory: official class names and our arch names -> our network classes.

Files (official pickles, our safetensors) name their networks by class name; this fixed table
is the only way such a name becomes a class, so a file can never make us import anything else.
Network modules are imported lazily so `import gan.networks` stays cheap.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

import torch

ARCHS = ("stylegan2", "stylegan3-t", "stylegan3-r")


@dataclass(frozen=True)
class NetworkKind:
    module: str  # our module holding the class
    class_name: str  # class name inside that module
    role: str  # 'generator' | 'discriminator'
    family: str  # 'stylegan2' | 'stylegan3'

    @property
    def qualname(self) -> str:
        """Our canonical name, written into our model files."""
        return f"{self.module}.{self.class_name}"


_SG2_G = NetworkKind("gan.networks.stylegan2", "Generator", "generator", "stylegan2")
_SG3_G = NetworkKind("gan.networks.stylegan3", "Generator", "generator", "stylegan3")
_SG2_D = NetworkKind("gan.networks.stylegan2", "Discriminator", "discriminator", "stylegan2")

# Official names (StyleGAN3 repo, and StyleGAN2-ADA-pytorch's `training.networks`) and ours.
_KINDS = {
    "training.networks_stylegan2.Generator": _SG2_G,
    "training.networks.Generator": _SG2_G,
    "training.networks_stylegan3.Generator": _SG3_G,
    "training.networks_stylegan2.Discriminator": _SG2_D,
    "training.networks.Discriminator": _SG2_D,
    _SG2_G.qualname: _SG2_G,
    _SG3_G.qualname: _SG3_G,
    _SG2_D.qualname: _SG2_D,
}


def network_kind(class_name: str) -> NetworkKind | None:
    """The kind of network a class name denotes, None when we do not know it."""
    return _KINDS.get(class_name)


def network_class(kind: NetworkKind) -> type[torch.nn.Module]:
    return getattr(importlib.import_module(kind.module), kind.class_name)


def kind_of(net: torch.nn.Module) -> NetworkKind | None:
    """The kind of one of our network instances (None for foreign modules)."""
    return _KINDS.get(f"{type(net).__module__}.{type(net).__qualname__}")


def generator_arch(kind: NetworkKind, kwargs: dict) -> str:
    """'stylegan2', or for StyleGAN3 'stylegan3-r' when the config uses 1x1 convolutions or
    radial filters (the R config sets both), else 'stylegan3-t'."""
    if kind.family == "stylegan2":
        return "stylegan2"
    if kwargs.get("conv_kernel", 3) == 1 or kwargs.get("use_radial_filters", False):
        return "stylegan3-r"
    return "stylegan3-t"


def bind_kwargs(kind: NetworkKind, args: tuple | list, kwargs: dict) -> dict:
    """Positional + keyword constructor arguments as one keyword dict (TypeError if they do not fit)."""
    signature = inspect.signature(network_class(kind))
    bound = signature.bind(*args, **kwargs)
    out = {}
    for name, value in bound.arguments.items():
        if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        else:
            out[name] = value
    return out


def build_network(kind: NetworkKind, kwargs: dict) -> torch.nn.Module:
    return network_class(kind)(**kwargs)


def build_generator(arch: str, kwargs: dict) -> torch.nn.Module:
    """A generator of the given arch from official constructor kwargs. For 'stylegan3-r' the
    caller passes the R settings (conv_kernel=1, use_radial_filters=True) in kwargs."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; expected one of {', '.join(ARCHS)}")
    kind = _SG2_G if arch == "stylegan2" else _SG3_G
    G = build_network(kind, kwargs)
    if generator_arch(kind, kwargs) != arch:
        raise ValueError(f"kwargs {kwargs} describe {generator_arch(kind, kwargs)}, not {arch}")
    return G


def build_discriminator(kwargs: dict) -> torch.nn.Module:
    return build_network(_SG2_D, kwargs)
