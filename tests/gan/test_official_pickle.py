"""The safe importer for NVIDIA's official network pickles.

No official file can be downloaded here, so the tests write pickles with the official layout
themselves: a fake `torch_utils.persistence` module whose `_reconstruct_persistent_obj` the
persistent objects reduce to (exactly as the official decorator does), holding our networks'
__dict__ with the real parity-fixture weights. The importer must load them and reproduce the
fixture outputs, and refuse every hostile variant without running it.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from gan.errors import ModelLoadError
from gan.io.legacy_storage import parse_legacy_storage
from gan.io.safe_unpickle import PersistentRecord, load_restricted

FIXTURES = Path("/work/shared/fixtures/official")


# ---- official-layout pickles ---------------------------------------------------------------------


def _never_called(meta):
    raise AssertionError("the importer must never call the file's reconstruct function")


def _exec_module_src(src):
    raise AssertionError("must never be called")


class EasyDict(dict):
    """Like dnnlib.EasyDict (pickled by reference as dnnlib.util.EasyDict)."""


@pytest.fixture
def official_modules(monkeypatch):
    """Register fake `torch_utils.persistence` and `dnnlib.util` so pickle can name their globals."""
    persistence = types.ModuleType("torch_utils.persistence")
    for fn in (_never_called, _exec_module_src):
        name = "_reconstruct_persistent_obj" if fn is _never_called else "_src_to_module"
        fn = types.FunctionType(fn.__code__, fn.__globals__, name)
        fn.__module__, fn.__qualname__ = "torch_utils.persistence", name
        setattr(persistence, name, fn)
    torch_utils = types.ModuleType("torch_utils")
    torch_utils.persistence = persistence
    util = types.ModuleType("dnnlib.util")
    easydict = type("EasyDict", (EasyDict,), {"__module__": "dnnlib.util"})
    util.EasyDict = easydict
    dnnlib = types.ModuleType("dnnlib")
    dnnlib.util = util
    for name, mod in [
        ("torch_utils", torch_utils),
        ("torch_utils.persistence", persistence),
        ("dnnlib", dnnlib),
        ("dnnlib.util", util),
    ]:
        monkeypatch.setitem(sys.modules, name, mod)
    return types.SimpleNamespace(persistence=persistence, EasyDict=easydict)


class Persistent:
    """Pickles as the official persistence decorator does: (_reconstruct_persistent_obj, (meta,))."""

    def __init__(self, class_name: str, state: dict):
        self.class_name, self.state = class_name, state

    def __reduce__(self):
        fn = sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj
        meta = dict(
            type="class",
            version=6,
            module_src="import os\nos.system('echo this source must never run')\n",
            class_name=self.class_name,
            state=self.state,
        )
        return (fn, (meta,))


_PLAIN = (bool, int, float, str, type(None), np.ndarray, np.generic)


def _keep(value) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_keep(v) for v in value)
    return isinstance(value, _PLAIN)


def official_layout(module: torch.nn.Module, class_name: str, init_kwargs: dict | None = None) -> Persistent:
    """`module` as the official pickle holds it: its __dict__ (parameters, buffers, hooks, plain
    attributes incl. numpy values) with sub-modules nested as persistent objects."""
    state = {}
    for key, value in module.__dict__.items():
        if key == "_modules":
            family = class_name.rsplit(".", 1)[0]
            value = OrderedDict(
                (n, None if m is None else official_layout(m, f"{family}.{type(m).__name__}"))
                for n, m in value.items()
            )
        elif key in ("_parameters", "_buffers", "_non_persistent_buffers_set") or key.endswith("hooks"):
            pass
        elif not _keep(value):
            continue  # e.g. callables of our implementation; not part of the official layout
        state[key] = value
    state["_init_args"] = ()
    state["_init_kwargs"] = init_kwargs or {}
    return Persistent(class_name, state)


def fixture_network(name: str) -> tuple[torch.nn.Module, dict, np.lib.npyio.NpzFile]:
    """Our network built from an official fixture's init_kwargs, with its weights."""
    from gan.networks import build_network, network_kind

    spec = json.loads((FIXTURES / f"{name}.json").read_text())
    data = np.load(FIXTURES / f"{name}.npz")
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
    return Persistent("training.augment.AugmentPipe", state)


def write_snapshot(
    path: Path, ns, name: str, only_g_ema: bool = False, ada: bool = False, protocol: int = 4
) -> dict:
    """An official-layout network-snapshot pickle of fixture `name` (+ the discriminator fixture)."""
    G, spec, data = fixture_network(name)
    kwargs = dict(spec["init_kwargs"])
    class_name = spec["class_name"]
    if ada:  # StyleGAN2-ADA-pytorch: training.networks.Generator(..., synthesis_kwargs={...})
        class_name = "training.networks.Generator"
        top = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs")
        kwargs = {k: v for k, v in kwargs.items() if k in top} | {
            "synthesis_kwargs": {k: v for k, v in kwargs.items() if k not in top}
        }
    snapshot = {"G_ema": official_layout(G, class_name, easy(ns, kwargs))}
    if not only_g_ema:
        D, d_spec, _ = fixture_network("disc")
        snapshot["G"] = official_layout(G, class_name, easy(ns, kwargs))
        snapshot["D"] = official_layout(D, d_spec["class_name"], easy(ns, d_spec["init_kwargs"]))
        snapshot["augment_pipe"] = augment_pipe(0.125)
        snapshot["training_set_kwargs"] = easy(
            ns,
            {"class_name": "training.dataset.ImageFolderDataset", "path": "/data/ffhq.zip", "xflip": False},
        )
    with open(path, "wb") as f:
        pickle.dump(snapshot, f, protocol=protocol)  # plain pickle.dump, as the official training loop
    return {"spec": spec, "data": data}


def render(G, data, n: int = 1) -> torch.Tensor:
    """The first n images of the fixture's psi=0.7 batch (one image already shows any wrong weight)."""
    z, c = torch.from_numpy(data["io/z"][:n]), torch.from_numpy(data["io/c"][:n])
    with torch.no_grad():
        ws = G.mapping(z, c, truncation_psi=0.7)
        return G.synthesis(ws, noise_mode="const")


# ---- loading official-layout snapshots -----------------------------------------------------------


@pytest.mark.parametrize("name,arch", [("sg3_t", "stylegan3-t"), ("sg2", "stylegan2")])
def test_snapshot_loads_and_renders_fixture_image(official_modules, tmp_path, name, arch):
    from gan.model_io import load_model

    path = tmp_path / "network-snapshot-000000.pkl"
    ref = write_snapshot(path, official_modules, name)
    model = load_model(path)
    assert model.arch == arch
    assert model.networks == ["G_ema", "G", "D"]
    assert model.g_kwargs["channel_max"] == ref["spec"]["init_kwargs"]["channel_max"]
    assert (
        model.g_kwargs["mapping_kwargs"] == {"num_layers": 2}
        and type(model.g_kwargs["mapping_kwargs"]) is dict
    )
    img = render(model.G, ref["data"])
    assert (img - torch.from_numpy(ref["data"]["io/img_psi0.7"][:1])).abs().max().item() <= 1e-4
    assert not model.G.training and all(not p.requires_grad for p in model.G.parameters())

    disc = np.load(FIXTURES / "disc.npz")
    with torch.no_grad():
        logits = model.D(torch.from_numpy(disc["io/img"]), torch.zeros([4, 0]))
    assert (logits - torch.from_numpy(disc["io/logits"])).abs().max().item() <= 1e-4

    meta = model.metadata
    json.dumps(meta)
    assert meta["augment_pipe"]["p"] == pytest.approx(0.125)
    assert meta["augment_pipe"]["kwargs"]["rotate90"] == 1
    assert meta["training_set_kwargs"]["path"] == "/data/ffhq.zip"
    assert meta["official_class_names"]["D"] == "training.networks_stylegan2.Discriminator"


def test_stylegan3_r_is_recognised(official_modules, tmp_path):
    from gan.model_io import load_model

    path = tmp_path / "r.pkl"
    ref = write_snapshot(path, official_modules, "sg3_r", only_g_ema=True)
    model = load_model(path)
    assert model.arch == "stylegan3-r" and model.networks == ["G_ema"] and model.D is None
    img = render(model.G, ref["data"])
    assert (img - torch.from_numpy(ref["data"]["io/img_psi0.7"][:1])).abs().max().item() <= 1e-4


def test_stylegan2_ada_pytorch_naming(official_modules, tmp_path):
    """StyleGAN2-ADA-pytorch pickles name training.networks.Generator and nest synthesis_kwargs.
    Written with pickle protocol 2 to cover the older opcodes (GLOBAL, _codecs.encode, __builtin__)."""
    from gan.model_io import load_model

    path = tmp_path / "ada.pkl"
    ref = write_snapshot(path, official_modules, "sg2", ada=True, protocol=2)
    assert b"_codecs\nencode" in path.read_bytes() and b"__builtin__\nset" in path.read_bytes()
    model = load_model(path, training_nets=False)
    assert model.arch == "stylegan2" and model.D is None and model.G_train is None
    assert "synthesis_kwargs" not in model.g_kwargs and model.g_kwargs["channel_base"] == 4096
    img = render(model.G, ref["data"])
    assert (img - torch.from_numpy(ref["data"]["io/img_psi0.7"][:1])).abs().max().item() <= 1e-4


def test_unknown_network_class_is_named(official_modules, tmp_path):
    from gan.model_io import load_model

    state = {"_parameters": {}, "_buffers": {}, "_modules": {}, "_init_args": (), "_init_kwargs": {}}
    path = tmp_path / "other.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Persistent("training.networks_fancy.Generator", state)}))
    with pytest.raises(ModelLoadError, match=r"training\.networks_fancy\.Generator.*does not know"):
        load_model(path)


def test_weights_not_matching_the_settings(official_modules, tmp_path):
    from gan.model_io import load_model

    G, spec, _ = fixture_network("sg2")
    kwargs = dict(spec["init_kwargs"], channel_max=32)  # the weights are for channel_max 64
    path = tmp_path / "mismatch.pkl"
    path.write_bytes(pickle.dumps({"G_ema": official_layout(G, spec["class_name"], kwargs)}))
    with pytest.raises(ModelLoadError, match="wrong shapes"):
        load_model(path)


def test_pickle_without_g_ema(tmp_path):
    from gan.model_io import load_model

    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(ModelLoadError, match="no 'G_ema'.*weights"):
        load_model(path)
    path.write_bytes(pickle.dumps({"G_ema": None, "D": None}))
    with pytest.raises(ModelLoadError, match="'G_ema' in .* is a NoneType, not a StyleGAN network"):
        load_model(path)


# ---- hostile pickles ---------------------------------------------------------------------------


class Reduce:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def hostile_payloads(marker: Path, ns) -> dict[str, object]:
    """name of the global the importer must name -> object whose unpickling would create marker."""
    state = {"_parameters": {}, "_buffers": {}, "_modules": {}, "_init_kwargs": {}}
    return {
        "posix.system": Reduce(os.system, f"touch {marker}"),
        "builtins.eval": Reduce(eval, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.Popen": Reduce(subprocess.Popen, ["touch", str(marker)]),
        "builtins.exec": {
            "G_ema": Persistent(
                "training.networks_stylegan2.Generator",
                dict(state, evil=Reduce(exec, f"open({str(marker)!r}, 'w').close()")),
            )
        },  # fmt: skip
        "torch.serialization.load": Reduce(torch.load, str(marker)),
        "torch_utils.persistence._src_to_module": Reduce(ns.persistence._src_to_module, "open('x','w')"),
    }


@pytest.mark.parametrize(
    "global_name",
    [
        "posix.system",
        "builtins.eval",
        "subprocess.Popen",
        "builtins.exec",
        "torch.serialization.load",
        "torch_utils.persistence._src_to_module",
    ],
)
def test_hostile_globals_are_refused_and_never_run(official_modules, tmp_path, global_name):
    from gan.model_io import load_model

    marker = tmp_path / "pwned"
    payload = hostile_payloads(marker, official_modules)[global_name]
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(ModelLoadError, match=rf"`{global_name}`.*nothing from it was executed"):
        load_model(path)
    assert not marker.exists()


def test_hostile_global_inside_tensor_storage_bytes(tmp_path):
    """The bytes handed to torch.storage._load_from_bytes are parsed by us, restrictively."""
    marker = tmp_path / "pwned"
    storage_bytes = pickle.dumps(Reduce(os.system, f"touch {marker}"), protocol=2)
    data = pickle.dumps(Reduce(torch.storage._load_from_bytes, storage_bytes))
    with pytest.raises(ModelLoadError, match=r"`posix\.system`"):
        load_restricted(io.BytesIO(data), "evil.pkl")
    assert not marker.exists()


def test_torch_load_is_not_used_for_storages(monkeypatch):
    """Even a valid storage never goes through torch.load (which can execute code)."""
    monkeypatch.setattr(torch, "load", lambda *a, **k: (_ for _ in ()).throw(AssertionError("torch.load")))
    data = pickle.dumps(torch.arange(5.0))
    out = load_restricted(io.BytesIO(data), "t.pkl")
    assert torch.equal(out, torch.arange(5.0))


# ---- damaged files -----------------------------------------------------------------------------


def test_truncated_snapshot(official_modules, tmp_path):
    from gan.model_io import load_model

    path = tmp_path / "full.pkl"
    write_snapshot(path, official_modules, "sg2", only_g_ema=True)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 1, 40):
        bad = tmp_path / f"cut{cut}.pkl"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelLoadError, match="truncated"):
            load_model(bad)


def test_random_bytes(tmp_path):
    from gan.model_io import load_model

    rng = np.random.default_rng(0)
    for i, head in enumerate([b"", b"\x80\x04", b"\x80\x02"]):
        path = tmp_path / f"random{i}.pkl"
        path.write_bytes(head + rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
        with pytest.raises(ModelLoadError):
            load_model(path)


def test_missing_and_empty_files(tmp_path):
    from gan.model_io import load_model

    with pytest.raises(ModelLoadError, match="no such file"):
        load_model(tmp_path / "nope.pkl")
    (tmp_path / "empty.pkl").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="empty"):
        load_model(tmp_path / "empty.pkl")
    with pytest.raises(ModelLoadError, match="directory"):
        load_model(tmp_path)


def test_torch_zip_checkpoint_is_refused(tmp_path):
    from gan.model_io import load_model

    path = tmp_path / "ckpt.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(ModelLoadError, match="torch.save checkpoint"):
        load_model(path)


# ---- the restricted unpickler on hand-made data ------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_tensors_parameters_and_numpy_values(protocol):
    weight = torch.nn.Parameter(torch.randn(3, 4))
    value = {
        "param": weight,
        "strided": torch.arange(12.0).reshape(3, 4).t(),  # non-contiguous view
        "offset": torch.arange(10, dtype=torch.int64)[3:7],
        "half": torch.randn(5).half(),
        "bool": torch.tensor([True, False]),
        "scalar_tensor": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
        "arr": np.broadcast_to(np.asarray([3, 4]), [2]),
        "farr": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "f64": np.float64(1.5),
        "i64": np.int64(-3),
        "f32": np.float32(0.25),
        "set": {1, 2},
        "frozenset": frozenset({"a"}),
        "bytes": b"\x00\xff",
        "od": OrderedDict(a=1),
    }
    out = load_restricted(io.BytesIO(pickle.dumps(value, protocol=protocol)), "x.pkl")
    for key in ("param", "strided", "offset", "half", "bool", "scalar_tensor", "empty"):
        expected = value[key].detach()
        assert out[key].dtype == expected.dtype and torch.equal(out[key], expected), key
    np.testing.assert_array_equal(out["arr"], [3, 4])
    np.testing.assert_array_equal(out["farr"], value["farr"])
    assert out["f64"] == 1.5 and out["f64"].dtype == np.float64
    assert out["i64"] == -3 and out["f32"] == 0.25
    assert out["set"] == {1, 2} and out["frozenset"] == frozenset({"a"}) and out["bytes"] == b"\x00\xff"
    assert isinstance(out["od"], OrderedDict)


def test_torch2_only_records():
    """torch >= 2: _rebuild_tensor_v3 (uint16 etc. via untyped storage) and _rebuild_from_type_v2
    (tensors carrying Python attributes)."""
    t = torch.arange(4).to(torch.uint16)
    with_state = torch.ones(2)
    with_state.note = "x"
    data = pickle.dumps({"u16": t, "with_state": with_state})
    assert b"_rebuild_tensor_v3" in data and b"_rebuild_from_type_v2" in data
    out = load_restricted(io.BytesIO(data), "x.pkl")
    assert out["u16"].dtype == torch.uint16 and out["u16"].tolist() == [0, 1, 2, 3]
    assert torch.equal(out["with_state"], torch.ones(2))


def test_legacy_storage_layout():
    """The bytes torch puts in a pickled storage: legacy torch.save of the storage."""
    storage = torch.arange(6, dtype=torch.float32).untyped_storage()
    typed = torch.TypedStorage(wrap_storage=storage, dtype=torch.float32, _internal=True)
    fn, (data,) = typed.__reduce__()
    assert (fn.__module__, fn.__name__) == ("torch.storage", "_load_from_bytes")
    parsed = parse_legacy_storage(data)
    assert parsed.flat.tolist() == [0, 1, 2, 3, 4, 5] and not parsed.untyped
    with pytest.raises(ModelLoadError, match="truncated|damaged"):
        parse_legacy_storage(data[:-3])
    with pytest.raises(ModelLoadError):
        parse_legacy_storage(b"not a storage")
    # torch 1.6 briefly wrote the zip format of torch.save there.
    buf = io.BytesIO()
    torch.save(typed, buf)
    assert buf.getvalue()[:2] == b"PK"
    assert parse_legacy_storage(buf.getvalue()).flat.tolist() == [0, 1, 2, 3, 4, 5]


def test_tensor_record_outside_its_storage_is_refused():
    """A tensor record claiming more elements than its storage holds must not read out of bounds."""
    storage = torch.TypedStorage(
        wrap_storage=torch.arange(4.0).untyped_storage(), dtype=torch.float32, _internal=True
    )
    cases = [((40,), (1,), 0), ((4,), (1,), 3), ((2, 2), (5, 1), 0), ((10**9,), (0,), 0)]
    for size, stride, offset in cases:  # the last would allocate 4 GB from 16 bytes
        record = Reduce(torch._utils._rebuild_tensor_v2, storage, offset, size, stride, False, OrderedDict())
        with pytest.raises(ModelLoadError, match="does not fit its storage"):
            load_restricted(io.BytesIO(pickle.dumps(record)), "x.pkl")


def test_persistent_record_keeps_source_unexecuted(official_modules):
    rec = load_restricted(io.BytesIO(pickle.dumps(augment_pipe(0.5))), "a.pkl")
    assert isinstance(rec, PersistentRecord) and rec.class_name == "training.augment.AugmentPipe"
    assert rec.module_src_len > 0 and float(rec.state["_buffers"]["p"]) == 0.5


@pytest.mark.parametrize(
    "value",
    [np.array([1, "a"], dtype=object), np.zeros(2, dtype=[("a", "f4"), ("b", "i4")])],
    ids=["object-array", "structured-array"],
)
def test_unsupported_numpy_arrays_are_refused(value):
    with pytest.raises(ModelLoadError, match="unsupported numpy dtype"):
        load_restricted(io.BytesIO(pickle.dumps(value)), "x.pkl")
