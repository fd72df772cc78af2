"""Network pickles made to exhaust memory or time, crash the importer, or poison the process are
refused with a ModelLoadError, quickly and within bounded memory; a valid file still loads after.

Each hostile file is small: the danger is in what it asks for (huge settings, views of one storage
repeated, exponential shared references, cycles, deep nesting, huge integers, BUILD on the
importer's own functions), not in its size.
"""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import textwrap
from collections import OrderedDict

import numpy as np
import pytest
import torch

from gan.errors import ModelLoadError
from gan.io import safe_unpickle
from gan.io.safe_unpickle import load_restricted
from gan.model_io import load_model
from gan.networks.stylegan2 import Generator
from tests.support.official_layout import (
    Persistent,
    install_official_modules,
    official_layout,
    tiny_sg2_init_kwargs,
)

TINY = tiny_sg2_init_kwargs(dim=8, res=16, channel_base=128, mapping_layers=2)


@pytest.fixture(autouse=True)
def official_modules(monkeypatch):
    return install_official_modules(monkeypatch)


def tiny_generator() -> torch.nn.Module:
    torch.manual_seed(0)
    return Generator(**TINY).eval()


def snapshot_bytes(kwargs: dict | None = None, **extra) -> bytes:
    """A valid official-layout pickle of the tiny generator (kwargs replace its settings)."""
    record = official_layout(tiny_generator(), "networks_stylegan2", kwargs or TINY)
    return pickle.dumps({"G_ema": record, **extra}, protocol=4)


def load_bytes(tmp_path, data: bytes, name: str = "x.pkl"):
    path = tmp_path / name
    path.write_bytes(data)
    return load_model(path)


def test_the_valid_base_file_loads(tmp_path):
    model = load_bytes(tmp_path, snapshot_bytes())
    assert model.arch == "stylegan2" and model.G.w_dim == 8


# ---- settings that ask for far more than the file holds ----------------------------------------------


@pytest.mark.parametrize(
    "change,message",
    [
        (dict(w_dim=200_000), "far bigger than the weights the file holds"),
        (dict(channel_max=10**6, channel_base=10**9), "far bigger than the weights the file holds"),
        (dict(channel_base=-4096), "channel_base = -4096 is negative"),
        (dict(img_resolution=2**40), "img_resolution .* is far out of range"),
        (dict(z_dim=float("inf")), "z_dim = inf is not a usable number"),
        (dict(img_channels="3" * 1000), "img_channels is a 1000-character text"),
        (dict(mapping_kwargs=dict(num_layers=10**6)), "far bigger than the weights|more than .* tensors"),
    ],
)
def test_settings_out_of_proportion_are_refused_before_building(tmp_path, change, message):
    with pytest.raises(ModelLoadError, match=message):
        load_bytes(tmp_path, snapshot_bytes(dict(TINY, **change)))


RSS_CHILD = textwrap.dedent(
    """
    import pickle, resource, sys
    sys.path.insert(0, {root!r})
    from tests.support.official_layout import install_official_modules
    from gan.errors import ModelLoadError
    from gan.model_io import load_model

    class MP:  # monkeypatch stand-in for install_official_modules
        def setitem(self, d, k, v): d[k] = v
    install_official_modules(MP())
    try:
        load_model(sys.argv[1])
        outcome = "loaded"
    except ModelLoadError as exc:
        outcome = "refused: " + str(exc)[:300]
    print(outcome)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)  # MiB
    """
)


class Reduce:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def peak_rss_of_load(path) -> tuple[str, int]:
    """(outcome, peak RSS in MiB) of loading `path` in a fresh process."""
    import tests

    root = str(__import__("pathlib").Path(tests.__path__[0]).parent)
    done = subprocess.run(
        [sys.executable, "-c", RSS_CHILD.format(root=root), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    outcome, rss = done.stdout.strip().splitlines()[-2:]
    return outcome, int(rss)


def test_huge_settings_stay_within_memory(tmp_path):
    """A few-kB file asking for a 200k-wide mapping network (about 160 GB) is refused without the
    process growing: peak RSS stays near that of importing torch."""
    path = tmp_path / "wide.pkl"
    path.write_bytes(snapshot_bytes(dict(TINY, w_dim=200_000)))
    outcome, rss = peak_rss_of_load(path)
    assert outcome.startswith("refused") and "far bigger" in outcome
    assert rss < 1500, f"peak RSS {rss} MiB"


# NVIDIA's pickles hold typed storages (torch.FloatStorage), which torch now calls deprecated.
@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated:UserWarning")
def test_one_storage_viewed_by_many_tensors_is_never_copied(tmp_path):
    """2000 tensors viewing one 4 MB storage claim 8 GB; they are kept as views (4 MB in memory)
    and the file is refused for its layout, not by running out of memory."""
    storage = torch.zeros(1 << 20).storage()  # one storage object: pickled once, then by memo
    view = (storage, 0, (1024, 1024), (1024, 1), False, OrderedDict())
    tensors = OrderedDict((f"p{i}", Reduce(torch._utils._rebuild_tensor_v2, *view)) for i in range(2000))
    state = {
        "_parameters": tensors,
        "_buffers": OrderedDict(),
        "_modules": OrderedDict(),
        "_init_args": (),
        "_init_kwargs": TINY,
    }
    data = pickle.dumps({"G_ema": Persistent("Generator", state, "networks_stylegan2")}, protocol=4)
    assert len(data) < 6 << 20  # the storage is pickled once
    path = tmp_path / "views.pkl"
    path.write_bytes(data)
    outcome, rss = peak_rss_of_load(path)
    assert outcome.startswith("refused"), outcome
    assert rss < 1500, f"peak RSS {rss} MiB"


# ---- structures: shared references, cycles, depth, huge integers ---------------------------------------


def exponential(levels: int = 60):
    node: list = []
    for _ in range(levels):
        node = [node, node]  # each level doubles the tree; pickled once per level thanks to the memo
    return node


@pytest.mark.parametrize("where", ["training_set_kwargs", "_init_kwargs", "_modules"])
def test_exponential_shared_references_are_refused_quickly(tmp_path, where):
    record = official_layout(tiny_generator(), "networks_stylegan2", TINY)
    extra = {}
    if where == "training_set_kwargs":
        extra["training_set_kwargs"] = {"path": exponential()}
    elif where == "_init_kwargs":
        record.state["_init_kwargs"] = dict(TINY, extra=exponential())
    else:
        record.state["_modules"]["blowup"] = exponential()
    data = pickle.dumps({"G_ema": record, **extra}, protocol=4)
    assert len(data) < 200_000
    with pytest.raises(ModelLoadError, match="expands to more than"):
        load_bytes(tmp_path, data)


def test_cycles_deep_nesting_and_huge_integers_are_refused(tmp_path):
    cyclic: dict = {}
    cyclic["self"] = cyclic
    with pytest.raises(ModelLoadError, match="cyclic structure"):
        load_bytes(tmp_path, snapshot_bytes(training_set_kwargs=cyclic))
    deep = b"\x80\x02" + b"]" * 600 + b"a" * 599 + b"."  # 600 lists, each in the one before
    with pytest.raises(ModelLoadError, match="nests deeper than"):
        load_restricted(io.BytesIO(deep), "deep.pkl")
    with pytest.raises(ModelLoadError, match="integer beyond 64 bits"):
        load_bytes(tmp_path, snapshot_bytes(training_set_kwargs={"n": 10**5000}))
    text_int = b"(dp0\nVG_ema\np1\nL" + b"9" * 5000 + b"L\ns."  # protocol 0: a decimal beyond the digit limit
    with pytest.raises(ModelLoadError):
        load_bytes(tmp_path, text_int)


# ---- BUILD on the importer's own objects -------------------------------------------------------------


def _build_on_global(module: str, name: str) -> bytes:
    """A protocol-2 pickle: push the global, then BUILD it with (None, {'__defaults__': (1, 2)})
    (slot state: setattr on the object itself) and with a dict state."""
    return (
        b"\x80\x02c"
        + module.encode()
        + b"\n"
        + name.encode()
        + b"\n"
        + b"N}X\x0c\x00\x00\x00__defaults__K\x01K\x02\x86s\x86b."
    )


@pytest.mark.parametrize(
    "module,name",
    [
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch_utils.persistence", "_reconstruct_persistent_obj"),
        ("torch", "Tensor"),
        ("collections", "OrderedDict"),
        ("torch", "float32"),
        ("dnnlib.util", "EasyDict"),
        ("numpy", "dtype"),
    ],
)
def test_build_on_allowed_globals_is_refused_and_leaves_nothing_behind(tmp_path, module, name):
    with pytest.raises(ModelLoadError):
        load_restricted(io.BytesIO(_build_on_global(module, name)), "evil.pkl")
    assert torch._utils._rebuild_tensor_v2.__defaults__ != (1, 2)
    assert safe_unpickle._rebuild_tensor_v2.__defaults__ == (None,)
    # A valid file still loads in the same process.
    assert load_bytes(tmp_path, snapshot_bytes()).arch == "stylegan2"


def test_nan_weights_are_refused(tmp_path):
    G = tiny_generator()
    with torch.no_grad():
        G.synthesis.b16.conv1.weight[0, 0, 0, 0] = float("nan")
    data = pickle.dumps({"G_ema": official_layout(G, "networks_stylegan2", TINY)})
    with pytest.raises(ModelLoadError, match="NaN or infinite"):
        load_bytes(tmp_path, data)


def test_numpy_object_arrays_stay_refused():
    with pytest.raises(ModelLoadError, match="unsupported numpy dtype"):
        load_restricted(io.BytesIO(pickle.dumps({"a": np.array([print], dtype=object)})), "x.pkl")


def test_a_huge_memo_index_allocates_nothing(tmp_path):
    """LONG_BINPUT with index 2**31 - 1 (6 bytes of pickle): the C unpickler sizes its memo table by
    the index (16 GB); ours keeps the memo in a dict. Found by the byte fuzzer."""
    path = tmp_path / "memo.pkl"
    path.write_bytes(b"\x80\x04}r\xff\xff\xff\x7f.")  # PROTO 4, EMPTY_DICT, LONG_BINPUT 2**31-1, STOP
    outcome, rss = peak_rss_of_load(path)
    assert outcome.startswith("refused") and "no 'G_ema'" in outcome
    assert rss < 1500, f"peak RSS {rss} MiB"


@pytest.mark.parametrize(
    "suffix",
    [b"(K\x00tb.", b"K\x00K\x01s.", b"(K\x00K\x01u."],
    ids=["BUILD on a tensor", "SETITEM into a tensor", "SETITEMS into a tensor"],
)
def test_build_and_setitem_only_touch_our_stand_ins(suffix):
    """A tensor rebuilt by the allow-listed functions, then BUILD (Tensor.__setstate__ would call
    set_ on it) or SETITEM(S) on it: refused."""
    tensor = pickle.dumps(torch.zeros(2), protocol=2)[:-1]  # a tensor on the stack, no STOP
    with pytest.raises(ModelLoadError, match="network pickles never do"):
        load_restricted(io.BytesIO(tensor + suffix), "evil.pkl")
