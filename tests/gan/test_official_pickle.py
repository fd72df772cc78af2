"""The safe importer for NVIDIA's official network pickles, on files in the true layout.

The pickles NVIDIA's own code wrote are tested in test_official_pickles_nvidia.py (they live in
../shared); here the tests write the same layout themselves (tests/support/official_layout.py:
bare class names, module source as text only) from the parity-fixture weights, so the importer's
behaviour is checked where ../shared is absent, including every hostile variant.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from gan.errors import ModelLoadError
from gan.io.legacy_storage import parse_legacy_storage
from gan.io.safe_unpickle import PersistentRecord, load_restricted
from tests.support.official_layout import (
    Persistent,
    augment_pipe,
    fixture_network,
    install_official_modules,
    module_source,
    official_layout,
    render,
    write_snapshot,
)
from tests.support.paths import OFFICIAL as FIXTURES


@pytest.fixture
def official_modules(monkeypatch):
    return install_official_modules(monkeypatch)


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
    assert meta["era"] == "pytorch"
    nets = meta["official_networks"]
    sg2, sg3 = "training/networks_stylegan2.py", "training/networks_stylegan3.py"
    assert nets["D"]["class_name"] == "Discriminator" and nets["D"]["module"] == sg2
    assert nets["G_ema"]["class_name"] == "Generator"
    assert nets["G_ema"]["module"] == (sg3 if arch == "stylegan3-t" else sg2)
    assert meta["augment_pipe"]["class_name"] == "AugmentPipe"


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
    assert model.metadata["official_networks"]["G_ema"]["module"] == "training/networks.py"
    img = render(model.G, ref["data"])
    assert (img - torch.from_numpy(ref["data"]["io/img_psi0.7"][:1])).abs().max().item() <= 1e-4


def test_unknown_network_is_refused_naming_class_and_what_was_looked_at(official_modules, tmp_path):
    from gan.model_io import load_model

    fc = official_layout(torch.nn.Linear(2, 2), "networks_stylegan3", class_name="FullyConnectedLayer")
    state = {"_parameters": {}, "_buffers": {}, "_modules": {"body": fc}, "_init_kwargs": {"depth": 3}}
    path = tmp_path / "other.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Persistent("Generator", state, "networks_stylegan3")}))
    expected = r"`Generator` that fits none.*sub-modules \(body\).*arguments \(depth\)"
    with pytest.raises(ModelLoadError, match=expected):
        load_model(path)


# ---- recognising the family: state first, module source (as text) second --------------------------


def _g_ema_record(official_modules, name: str, module: str, class_name: str = "Generator", kwargs=None):
    G, spec, _ = fixture_network(name)
    return official_layout(G, module, kwargs or spec["init_kwargs"], class_name=class_name)


@pytest.mark.parametrize(
    "name,module,family",
    [
        ("sg3_t", "networks_stylegan3", "stylegan3"),
        ("sg3_r", "networks_stylegan3", "stylegan3"),
        ("sg2", "networks_stylegan2", "stylegan2"),
        ("sg2", "networks", "stylegan2-ada"),  # told by the source alone: flat kwargs as in sg3's repo
    ],
)
def test_family_is_recognised_from_state_and_source(official_modules, tmp_path, name, module, family):
    from gan.model_io import load_model

    path = tmp_path / "g.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _g_ema_record(official_modules, name, module)}))
    info = load_model(path).metadata["official_networks"]["G_ema"]
    assert info["family"] == family and info["module"] == f"training/{module}.py"
    assert any(e.startswith("state:") for e in info["evidence"])
    assert any(e.startswith("module_src: defines Generator") for e in info["evidence"])


def test_source_that_cannot_be_parsed_leaves_the_state_to_decide(official_modules, tmp_path, monkeypatch):
    """A module_src that is not Python (or absurdly nested) is no signal; the state still decides."""
    from gan.model_io import load_model
    from tests.support import official_layout as layout

    for src in ("this is ( not python", "x = " + "(" * 5000 + ")" * 5000):
        monkeypatch.setattr(layout, "module_source", lambda module, src=src: src)
        path = tmp_path / "g.pkl"
        record = _g_ema_record(official_modules, "sg3_t", "networks_stylegan3")
        path.write_bytes(pickle.dumps({"G_ema": record}))
        info = load_model(path, training_nets=False).metadata["official_networks"]["G_ema"]
        assert info["family"] == "stylegan3" and "not parseable" in info["evidence"][-1]


def test_source_contradicting_the_state_is_refused(official_modules, tmp_path):
    from gan.model_io import load_model

    path = tmp_path / "g.pkl"  # StyleGAN3 weights, but the StyleGAN2 module's source
    path.write_bytes(pickle.dumps({"G_ema": _g_ema_record(official_modules, "sg3_t", "networks_stylegan2")}))
    with pytest.raises(ModelLoadError, match=r"networks_stylegan3.py network.*source.*networks_stylegan2.py"):
        load_model(path)
    path.write_bytes(
        pickle.dumps({"G_ema": _g_ema_record(official_modules, "sg2", "augment", class_name="Generator")})
    )
    with pytest.raises(ModelLoadError, match=r"defines no such class \(it defines AugmentPipe\)"):
        load_model(path)


def test_module_source_is_only_read_as_text(official_modules, tmp_path, monkeypatch):
    """The module source of every network holds a command; loading never runs it: nothing is
    exec'd or eval'd, and compile() is only used to build a syntax tree (ast.parse)."""
    import ast
    import builtins

    from gan.model_io import load_model
    from tests.support import official_layout as layout

    marker = tmp_path / "ran"
    src = f"import os\nos.system('touch {marker}')\nclass Generator: pass\nclass SynthesisInput: pass\n"
    monkeypatch.setattr(layout, "module_source", lambda module: src)
    path = tmp_path / "g.pkl"
    write_snapshot(path, official_modules, "sg3_t", only_g_ema=True)

    calls = []
    real_compile = builtins.compile

    def ast_only_compile(source, filename, mode, flags=0, *args, **kwargs):
        calls.append(flags)
        if not flags & ast.PyCF_ONLY_AST:
            raise AssertionError("code from the file was compiled to bytecode")
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    def forbidden(*args, **kwargs):
        raise AssertionError("code from the file was executed")

    with monkeypatch.context() as m:
        m.setattr(builtins, "exec", forbidden)
        m.setattr(builtins, "eval", forbidden)
        m.setattr(builtins, "compile", ast_only_compile)
        model = load_model(path, training_nets=False)
    assert model.arch == "stylegan3-t" and calls  # the source was parsed (as a tree), and not run
    assert not marker.exists()


def test_weights_not_matching_the_settings(official_modules, tmp_path):
    from gan.model_io import load_model

    G, spec, _ = fixture_network("sg2")
    kwargs = dict(spec["init_kwargs"], channel_max=32)  # the weights are for channel_max 64
    path = tmp_path / "mismatch.pkl"
    path.write_bytes(pickle.dumps({"G_ema": official_layout(G, "networks_stylegan2", kwargs)}))
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
                "Generator",
                dict(state, evil=Reduce(exec, f"open({str(marker)!r}, 'w').close()")),
                "networks_stylegan2",
            )
        },
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
    assert isinstance(rec, PersistentRecord) and rec.class_name == "AugmentPipe"
    assert rec.module_src == module_source("augment") and float(rec.state["_buffers"]["p"]) == 0.5


@pytest.mark.parametrize(
    "value",
    [np.array([1, "a"], dtype=object), np.zeros(2, dtype=[("a", "f4"), ("b", "i4")])],
    ids=["object-array", "structured-array"],
)
def test_unsupported_numpy_arrays_are_refused(value):
    with pytest.raises(ModelLoadError, match="unsupported numpy dtype"):
        load_restricted(io.BytesIO(pickle.dumps(value)), "x.pkl")


# ---- files of these families not seen yet: other sizes, channels, conditioning, architectures ------

UNSEEN = {
    "sg3-t 32px conditional": ("stylegan3", dict(img_resolution=32, c_dim=4)),
    "sg3-r grayscale": ("stylegan3", dict(img_channels=1, conv_kernel=1, use_radial_filters=True)),
    "sg2 rgba resnet": ("stylegan2", dict(img_channels=4, architecture="resnet")),
    "sg2 orig conditional": ("stylegan2", dict(architecture="orig", c_dim=3)),
    "sg2-ada 32px fp16 blocks": ("networks", dict(img_resolution=32, num_fp16_res=2, conv_clamp=256)),
}


@pytest.mark.parametrize("case", sorted(UNSEEN))
def test_unseen_configurations_load_and_compute_the_same(official_modules, tmp_path, case):
    from gan.model_io import load_model
    from gan.networks import build_network, network_kind

    module, extra = UNSEEN[case]
    sg3 = module == "stylegan3"
    kwargs = (
        dict(
            z_dim=8,
            w_dim=8,
            c_dim=0,
            img_resolution=16,
            img_channels=3,
            channel_max=8,
            mapping_kwargs=dict(num_layers=2),
            channel_base=256 if sg3 else 128,
        )
        | extra
    )
    kind = network_kind(f"training.networks_{'stylegan3' if sg3 else 'stylegan2'}.Generator")
    torch.manual_seed(0)
    G = build_network(kind, kwargs).eval()
    file_kwargs = kwargs
    if module == "networks":  # StyleGAN2-ADA-pytorch nests the synthesis settings
        top = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs")
        file_kwargs = {k: v for k, v in kwargs.items() if k in top}
        file_kwargs["synthesis_kwargs"] = {k: v for k, v in kwargs.items() if k not in top}
    official_module = module if module == "networks" else f"networks_{module}"
    path = tmp_path / "g.pkl"
    path.write_bytes(pickle.dumps({"G_ema": official_layout(G, official_module, file_kwargs)}))
    model = load_model(path)
    assert model.G.img_channels == kwargs["img_channels"] and model.G.c_dim == kwargs["c_dim"]
    torch.manual_seed(1)
    z, c = torch.randn([2, 8]), torch.eye(max(kwargs["c_dim"], 1))[:2, : kwargs["c_dim"]]
    with torch.no_grad():
        expected = G.synthesis(G.mapping(z, c, truncation_psi=0.7), noise_mode="const")
        got = model.G.synthesis(model.G.mapping(z, c, truncation_psi=0.7), noise_mode="const")
    assert torch.equal(got, expected)
