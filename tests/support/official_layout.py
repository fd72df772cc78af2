"""Writers of NVIDIA's network-pickle layouts, for tests that must run where `../shared` is absent.

PyTorch era (StyleGAN3 and StyleGAN2-ADA-pytorch training loops): `pickle.dump` of a dict whose
networks are persistent objects, each reducing to `torch_utils.persistence.
_reconstruct_persistent_obj(meta)` with meta = {type, version, module_src, class_name, state}.
As in every real file, `class_name` is the BARE class name and `module_src` is only text: here a
short stand-in written for the tests that defines the classes of the module it stands for (and
contains a command that must never run).

TensorFlow era: a tuple (G, D, Gs) of `dnnlib.tflib.network.Network` objects (NEWOBJ + BUILD)
whose state holds
`static_kwargs`, `components` and `variables` = [(TF name, numpy array)], written from one of our
StyleGAN2 networks by the TF naming and layout facts (conv weights [kh, kw, in, out], dense
weights [in, out], up-sampling kernels flipped, style biases minus one, noise inputs numbered over
the synthesis network).

The fake modules are registered in sys.modules only so that pickle can name their globals; the
importer under test must never call them.
"""

from __future__ import annotations

import copy
import json
import pickle
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from tests.support.paths import OFFICIAL

# Class names each official module defines and its Generator's constructor parameters (facts
# about NVIDIA's modules; the text below is ours).
_MODULE_CLASSES = {
    "networks_stylegan3": (
        "FullyConnectedLayer MappingNetwork SynthesisInput SynthesisLayer SynthesisNetwork Generator",
        "z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={}, **synthesis_kwargs",
    ),
    "networks_stylegan2": (
        "FullyConnectedLayer Conv2dLayer MappingNetwork SynthesisLayer ToRGBLayer SynthesisBlock "
        "SynthesisNetwork Generator DiscriminatorBlock MinibatchStdLayer DiscriminatorEpilogue Discriminator",
        "z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={}, **synthesis_kwargs",
    ),
    "networks": (  # StyleGAN2-ADA-pytorch
        "FullyConnectedLayer Conv2dLayer MappingNetwork SynthesisLayer ToRGBLayer SynthesisBlock "
        "SynthesisNetwork Generator DiscriminatorBlock MinibatchStdLayer DiscriminatorEpilogue Discriminator",
        "z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={}, synthesis_kwargs={}",
    ),
    "augment": ("AugmentPipe", ""),
}

MARKER_COMMAND = "echo this module source must never run"


def module_source(module: str) -> str:
    """Stand-in source text of official module `module` (e.g. 'networks_stylegan3')."""
    classes, generator_params = _MODULE_CLASSES[module]
    lines = [f"# Test stand-in for training/{module}.py", "import os", f"os.system({MARKER_COMMAND!r})", ""]
    for name in classes.split():
        lines.append(f"class {name}(object):")
        if name == "Generator":
            lines.append(f"    def __init__(self, {generator_params}):")
            lines.append("        os.system('echo never')")
        else:
            lines.append("    pass")
        lines.append("")
    return "\n".join(lines)


def _never_called(meta):
    raise AssertionError("the importer must never call the file's reconstruct function")


def _exec_module_src(src):
    raise AssertionError("must never be called")


class EasyDict(dict):
    """Like dnnlib.EasyDict (pickled by reference as dnnlib.util.EasyDict)."""


def _tf_network_getstate(self) -> dict:
    return self.state


def install_official_modules(monkeypatch) -> types.SimpleNamespace:
    """Register fake `torch_utils.persistence`, `dnnlib.util` and `dnnlib.tflib.network` so that
    pickle can name their globals."""
    persistence = types.ModuleType("torch_utils.persistence")
    for fn in (_never_called, _exec_module_src):
        name = "_reconstruct_persistent_obj" if fn is _never_called else "_src_to_module"
        fn = types.FunctionType(fn.__code__, fn.__globals__, name)
        fn.__module__, fn.__qualname__ = "torch_utils.persistence", name
        setattr(persistence, name, fn)
    torch_utils = types.ModuleType("torch_utils")
    torch_utils.persistence = persistence
    util = types.ModuleType("dnnlib.util")
    util.EasyDict = type("EasyDict", (EasyDict,), {"__module__": "dnnlib.util"})
    tflib_network = types.ModuleType("dnnlib.tflib.network")
    # Pickled like TF's Network: NEWOBJ of the class, then BUILD with its state dict.
    tflib_network.Network = type(
        "Network", (), {"__module__": "dnnlib.tflib.network", "__getstate__": _tf_network_getstate}
    )
    tflib = types.ModuleType("dnnlib.tflib")
    tflib.network = tflib_network
    dnnlib = types.ModuleType("dnnlib")
    dnnlib.util, dnnlib.tflib = util, tflib
    for name, mod in [
        ("torch_utils", torch_utils),
        ("torch_utils.persistence", persistence),
        ("dnnlib", dnnlib),
        ("dnnlib.util", util),
        ("dnnlib.tflib", tflib),
        ("dnnlib.tflib.network", tflib_network),
    ]:
        monkeypatch.setitem(sys.modules, name, mod)
    return types.SimpleNamespace(persistence=persistence, EasyDict=util.EasyDict)


class Persistent:
    """Pickles as the official persistence decorator does: (_reconstruct_persistent_obj, (meta,))."""

    def __init__(self, class_name: str, state: dict, module: str):
        self.class_name, self.state, self.module = class_name, state, module

    def __deepcopy__(self, memo):
        return Persistent(self.class_name, copy.deepcopy(self.state, memo), self.module)

    def __reduce__(self):
        fn = sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj
        meta = dict(
            type="class",
            version=6,
            module_src=module_source(self.module),
            class_name=self.class_name,
            state=self.state,
        )
        return (fn, (meta,))


_PLAIN = (bool, int, float, str, type(None), np.ndarray, np.generic)


def _keep(value) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_keep(v) for v in value)
    return isinstance(value, _PLAIN)


def tiny_sg2_init_kwargs(dim: int, res: int, channel_base: int, mapping_layers: int) -> dict:
    """init_kwargs of a tiny unconditional RGB official StyleGAN2 generator: z, w and the widest
    layer all `dim` wide (the pickle tests load many variants of one, so it must be cheap)."""
    return dict(
        z_dim=dim,
        w_dim=dim,
        c_dim=0,
        img_resolution=res,
        img_channels=3,
        channel_base=channel_base,
        channel_max=dim,
        mapping_kwargs=dict(num_layers=mapping_layers),
    )


def official_layout(
    module: torch.nn.Module, official_module: str, init_kwargs: dict | None = None, class_name: str = ""
) -> Persistent:
    """`module` as an official pickle holds it: its __dict__ (parameters, buffers, hooks, plain
    attributes incl. numpy values) with sub-modules nested as persistent objects, each named by its
    bare class name and carrying the source text of `official_module`."""
    state = {}
    for key, value in module.__dict__.items():
        if key == "_modules":
            value = OrderedDict(
                (n, None if m is None else official_layout(m, official_module)) for n, m in value.items()
            )
        elif key in ("_parameters", "_buffers", "_non_persistent_buffers_set") or key.endswith("hooks"):
            pass
        elif not _keep(value):
            continue  # e.g. callables of our implementation; not part of the official layout
        state[key] = value
    state["_init_args"] = ()
    state["_init_kwargs"] = init_kwargs or {}
    return Persistent(class_name or type(module).__name__, state, official_module)


def fixture_network(name: str) -> tuple[torch.nn.Module, dict, np.lib.npyio.NpzFile]:
    """Our network built from an official parity fixture's init_kwargs, with its weights."""
    from gan.networks import build_network, network_kind

    spec = json.loads((OFFICIAL / f"{name}.json").read_text())
    data = np.load(OFFICIAL / f"{name}.npz")
    net = build_network(network_kind(spec["class_name"]), spec["init_kwargs"])
    state = {k: torch.from_numpy(data[k]) for k in data.files if not k.startswith("io/")}
    net.load_state_dict(state, strict=True)
    return net.eval(), spec, data


def easy(ns, d: dict) -> dict:
    """Nested dicts as (fake) dnnlib.EasyDicts, as the official train.py passes kwargs."""
    return ns.EasyDict({k: easy(ns, v) if isinstance(v, dict) else v for k, v in d.items()})


def augment_pipe(p: float) -> Persistent:
    state = {
        "training": True,
        "_parameters": OrderedDict(),
        "_buffers": OrderedDict(p=torch.tensor(p), Hz_geom=torch.randn(12)),
        "_non_persistent_buffers_set": set(),
        "_modules": OrderedDict(),
        "_init_args": (),
        "_init_kwargs": {"xflip": 1, "rotate90": 1, "xint": 1, "scale": 1},
        "xflip": 1.0,
    }
    return Persistent("AugmentPipe", state, "augment")


def write_snapshot(
    path: Path, ns, name: str, only_g_ema: bool = False, ada: bool = False, protocol: int = 4
) -> dict:
    """An official-layout network-snapshot pickle of parity fixture `name` (+ the discriminator
    fixture), as the StyleGAN3 training loop (or with ada=True StyleGAN2-ADA-pytorch's) writes it."""
    G, spec, data = fixture_network(name)
    kwargs = dict(spec["init_kwargs"])
    module = spec["class_name"].split(".")[1]  # 'training.networks_stylegan3.Generator'
    if ada:  # StyleGAN2-ADA-pytorch: training/networks.py, Generator(..., synthesis_kwargs={...})
        module = "networks"
        top = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs")
        kwargs = {k: v for k, v in kwargs.items() if k in top} | {
            "synthesis_kwargs": {k: v for k, v in kwargs.items() if k not in top}
        }
    snapshot = {"G_ema": official_layout(G, module, easy(ns, kwargs))}
    if not only_g_ema:
        D, d_spec, _ = fixture_network("disc")
        d_module = "networks" if ada else d_spec["class_name"].split(".")[1]
        snapshot["G"] = official_layout(G, module, easy(ns, kwargs))
        snapshot["D"] = official_layout(D, d_module, easy(ns, d_spec["init_kwargs"]))
        snapshot["augment_pipe"] = augment_pipe(0.125)
        snapshot["training_set_kwargs"] = easy(
            ns,
            {"class_name": "training.dataset.ImageFolderDataset", "path": "/data/ffhq.zip", "xflip": False},
        )
    with open(path, "wb") as f:
        pickle.dump(snapshot, f, protocol=protocol)  # plain pickle.dump, as the official training loop
    return {"spec": spec, "data": data}


def render(G, data, n: int = 1) -> torch.Tensor:
    """The first n images of a parity fixture's psi=0.7 batch (one image shows any wrong weight)."""
    z, c = torch.from_numpy(data["io/z"][:n]), torch.from_numpy(data["io/c"][:n])
    with torch.no_grad():
        ws = G.mapping(z, c, truncation_psi=0.7)
        return G.synthesis(ws, noise_mode="const")


# ---- TensorFlow era ------------------------------------------------------------------------------


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def tf_generator_variables(G) -> tuple[list, list, list]:
    """(top, mapping, synthesis) variable lists of TF network Gs for our StyleGAN2 generator G."""
    top = [("dlatent_avg", _np(G.mapping.w_avg))]
    mapping = []
    for name, p in G.mapping.named_parameters():
        layer, kind = name.split(".")
        tf_layer = "LabelEmbed" if layer == "embed" else f"Dense{layer[2:]}"
        mapping.append((f"{tf_layer}/{kind}", _np(p).T if kind == "weight" else _np(p)))
    synthesis = []
    noise = {}
    for res in G.synthesis.block_resolutions:
        block = getattr(G.synthesis, f"b{res}")
        r = f"{res}x{res}"
        if res == 4:
            synthesis.append((f"{r}/Const/const", _np(block.const)[None]))
        convs = [("conv1", "Conv")] if res == 4 else [("conv0", "Conv0_up"), ("conv1", "Conv1")]
        for attr, tf in convs:
            layer = getattr(block, attr)
            w = _np(layer.weight).transpose(2, 3, 1, 0)  # [out, in, kh, kw] -> [kh, kw, in, out]
            synthesis.append((f"{r}/{tf}/weight", w[::-1, ::-1].copy() if attr == "conv0" else w))
            synthesis.append((f"{r}/{tf}/noise_strength", np.float32(layer.noise_strength.item())))
            synthesis.append((f"{r}/{tf}/bias", _np(layer.bias)))
            synthesis.append((f"{r}/{tf}/mod_weight", _np(layer.affine.weight).T))
            synthesis.append((f"{r}/{tf}/mod_bias", _np(layer.affine.bias) - 1))
            noise[len(noise)] = _np(layer.noise_const)[None, None]
        if hasattr(block, "torgb"):
            rgb = block.torgb
            lod = G.synthesis.img_resolution_log2 - (res.bit_length() - 1)
            tf_rgb = f"ToRGB_lod{lod}" if block.architecture == "orig" else f"{r}/ToRGB"  # progressive era
            synthesis.append((f"{tf_rgb}/weight", _np(rgb.weight).transpose(2, 3, 1, 0)))
            synthesis.append((f"{tf_rgb}/bias", _np(rgb.bias)))
            synthesis.append((f"{tf_rgb}/mod_weight", _np(rgb.affine.weight).T))
            synthesis.append((f"{tf_rgb}/mod_bias", _np(rgb.affine.bias) - 1))
        if hasattr(block, "skip"):
            skip = _np(block.skip.weight).transpose(2, 3, 1, 0)
            synthesis.append((f"{r}/Skip/weight", skip[::-1, ::-1].copy()))
    synthesis += [(f"noise{i}", v) for i, v in noise.items()]
    return top, mapping, synthesis


def tf_discriminator_variables(D) -> list:
    out = []
    for name, p in D.named_parameters():
        parts = name.split(".")
        value = _np(p)
        conv = value.ndim == 4
        if conv:
            value = value.transpose(2, 3, 1, 0)
        elif parts[-1] == "weight":
            value = value.T
        if parts[0] == "mapping":
            layer = "LabelEmbed" if parts[1] == "embed" else f"Mapping{parts[1][2:]}"
            out.append((f"{layer}/{parts[-1]}", value))
        elif parts[0] == "b4" and parts[1] in ("conv", "fc", "out", "fromrgb"):
            tf = {"conv": "4x4/Conv", "fc": "4x4/Dense0", "out": "Output", "fromrgb": "4x4/FromRGB"}[parts[1]]
            out.append((f"{tf}/{parts[-1]}", value))
        else:
            res = int(parts[0][1:])
            tf = {"fromrgb": "FromRGB", "conv0": "Conv0", "conv1": "Conv1_down", "skip": "Skip"}[parts[1]]
            out.append((f"{res}x{res}/{tf}/{parts[-1]}", value))
    return out


def tf_network(name: str, static_kwargs: dict, variables: list, components: dict | None = None):
    """A (fake) dnnlib.tflib.network.Network whose pickled state is `.state`."""
    cls = sys.modules["dnnlib.tflib.network"].Network
    net = cls()
    net.state = {
        "version": 4,
        "name": name,
        "static_kwargs": static_kwargs,
        "components": components or {},
        "build_module_src": f"import os\nos.system({MARKER_COMMAND!r})\n",
        "build_func_name": "G_main" if name.startswith("G") else "D_main",
        "variables": variables,
    }
    return net


def write_tf_snapshot(path: Path, G, D, g_static: dict, d_static: dict, protocol: int = 2) -> None:
    """A TensorFlow-era pickle (G, D, Gs) of our StyleGAN2 networks; G and Gs share weights."""

    def gs(name: str):
        top, mapping, synthesis = tf_generator_variables(G)
        return tf_network(
            name,
            g_static,
            top,
            {
                "mapping": tf_network("G_mapping", g_static, mapping),
                "synthesis": tf_network("G_synthesis", g_static, synthesis),
            },
        )

    data = (gs("G"), tf_network("D", d_static, tf_discriminator_variables(D)), gs("Gs"))
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=protocol)  # TF-era files were written by Python 3.6/3.7 pickles
