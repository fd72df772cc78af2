"""Our safetensors model format, `gan convert` and `gan info`."""

from __future__ import annotations

import errno
import hashlib
import json
import pickle

import numpy as np
import pytest
import safetensors
import safetensors.torch
import torch
from PIL import Image

from gan.cli import main
from gan.errors import ModelLoadError
from gan.io import files as io_files
from gan.model_io import load_model, save_model
from tests.support.official_layout import install_official_modules, render, write_snapshot
from tests.support.paths import OFFICIAL as FIXTURES


@pytest.fixture
def official_modules(monkeypatch):
    return install_official_modules(monkeypatch)


TINY = dict(z_dim=16, w_dim=16, c_dim=0, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2))


def make_tiny_generator(arch: str, seed: int = 0) -> torch.nn.Module:
    from gan.networks import build_generator

    torch.manual_seed(seed)
    G = build_generator(arch, dict(TINY, channel_base=256 if arch == "stylegan2" else 512, channel_max=16))
    with torch.no_grad():
        G.mapping.w_avg.normal_()  # non-zero so truncation matters
    return G.eval()


def tiny_discriminator(seed: int = 1) -> torch.nn.Module:
    from gan.networks.stylegan2 import Discriminator

    torch.manual_seed(seed)
    return Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16)


def outputs(G, seed: int = 0) -> torch.Tensor:
    z = torch.randn([2, G.z_dim], generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return G.synthesis(G.mapping(z, torch.zeros([2, G.c_dim]), truncation_psi=0.7), noise_mode="const")


def same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def full_model(tmp_path_factory):
    """A tiny SG2 model with G_ema, G and D, saved in our format."""
    G = make_tiny_generator("stylegan2", seed=0)
    G_train = make_tiny_generator("stylegan2", seed=1)
    D = tiny_discriminator()
    path = tmp_path_factory.mktemp("full") / "model.safetensors"
    meta = {"training": {"kimg": 12.5, "dataset": "toon"}, "directions": {"smile": [0.1, 0.2]}}
    save_model(path, G, D=D, G_train=G_train, metadata=meta)
    return path, G, G_train, D, meta


# ---- round trip ---------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["stylegan2", "stylegan3-t"])
def test_round_trip_generator(tmp_path, arch):
    G = make_tiny_generator(arch)
    path = tmp_path / "g.safetensors"
    save_model(path, G, arch=arch, metadata={"note": "x"})
    model = load_model(path)
    assert model.arch == arch and model.networks == ["G_ema"] and model.D is None
    assert model.g_kwargs == json.loads(json.dumps(G.init_kwargs))
    assert model.metadata == {"note": "x"}
    assert model.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert model.source == str(path)
    assert same_state(G, model.G)
    assert torch.equal(outputs(G), outputs(model.G))
    assert not model.G.training


def test_round_trip_all_networks(full_model):
    path, G, G_train, D, meta = full_model
    model = load_model(path)
    assert model.networks == ["G_ema", "G", "D"]
    assert same_state(G, model.G) and same_state(G_train, model.G_train) and same_state(D, model.D)
    assert model.metadata == meta
    assert model.d_kwargs == D.init_kwargs
    img = torch.randn([2, 3, 16, 16])
    with torch.no_grad():
        assert torch.equal(D(img, torch.zeros([2, 0])), model.D(img, torch.zeros([2, 0])))
    only_g = load_model(path, training_nets=False)
    assert only_g.networks == ["G_ema"] and same_state(G, only_g.G)


def test_file_layout(full_model):
    path = full_model[0]
    with safetensors.safe_open(str(path), "pt") as f:
        header = f.metadata()
        keys = set(f.keys())
    assert header["format"] == "stylegan-explorer" and header["format_version"] == "1"
    config = json.loads(header["config"])
    assert config["arch"] == "stylegan2"
    assert config["networks"]["D"]["class_name"] == "gan.networks.stylegan2.Discriminator"
    assert "G_ema.mapping.w_avg" in keys and "D.b4.out.weight" in keys and "G.mapping.fc0.weight" in keys


def test_save_rejects_bad_arguments(tmp_path):
    G = make_tiny_generator("stylegan2")
    with pytest.raises(ValueError, match="does not match"):
        save_model(tmp_path / "a.safetensors", G, arch="stylegan3-t")
    with pytest.raises(ValueError, match="JSON"):
        save_model(tmp_path / "a.safetensors", G, metadata={"x": object()})
    with pytest.raises(TypeError, match="not one of our networks"):
        save_model(tmp_path / "a.safetensors", torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="must be a discriminator"):
        save_model(tmp_path / "a.safetensors", G, D=G)
    assert list(tmp_path.iterdir()) == []


# ---- atomic writes ------------------------------------------------------------------------------


def test_full_disk_leaves_nothing_behind(tmp_path, monkeypatch):
    G = make_tiny_generator("stylegan2")
    path = tmp_path / "m.safetensors"

    def write_half_then_fail(fd, data):
        io_files.os.write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_files, "_write_all", write_half_then_fail)
    with pytest.raises(OSError) as info:
        save_model(path, G)
    assert info.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []

    # An existing file survives a failed overwrite unchanged.
    monkeypatch.undo()
    save_model(path, G, metadata={"v": 1})
    before = path.read_bytes()
    monkeypatch.setattr(io_files, "_write_all", write_half_then_fail)
    with pytest.raises(OSError):
        save_model(path, make_tiny_generator("stylegan2", seed=5), metadata={"v": 2})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_failed_fsync_and_interrupt_leave_nothing_behind(tmp_path, monkeypatch):
    def fail(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(io_files.os, "fsync", fail)
    with pytest.raises(KeyboardInterrupt):
        save_model(tmp_path / "m.safetensors", make_tiny_generator("stylegan2"))
    assert list(tmp_path.iterdir()) == []


# ---- load errors --------------------------------------------------------------------------------


def rewrite(src, dst, edit_tensors=None, edit_header=None):
    """Copy model file src to dst with its tensors / header changed."""
    with safetensors.safe_open(str(src), "pt") as f:
        header = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if edit_tensors:
        edit_tensors(tensors)
    if edit_header:
        edit_header(header)
    dst.write_bytes(safetensors.torch.save(tensors, metadata=header))
    return dst


def _set_config(key, value):
    def edit(header):
        config = json.loads(header["config"])
        config["networks"]["G_ema"][key] = value
        header["config"] = json.dumps(config)

    return edit


@pytest.mark.parametrize(
    "edit_tensors,edit_header,message",
    [
        (lambda t: t.pop("G_ema.mapping.w_avg"), None, r"missing tensors: mapping\.w_avg"),
        (lambda t: t.update({"G_ema.extra": torch.zeros(1)}), None, r"unexpected tensors: extra"),
        (lambda t: t.update({"X.weight": torch.zeros(1)}), None, r"tensors of no listed network: X\.weight"),
        (lambda t: t.update({"G_ema.mapping.w_avg": torch.zeros(3)}), None, r"wrong shapes: mapping\.w_avg"),
        (None, lambda h: h.update(format_version="2"), r"format version '2'.*newer"),
        (None, lambda h: h.pop("format"), "not a stylegan-explorer model"),
        (None, lambda h: h.update(config="{not json"), "damaged model header"),
        (None, _set_config("class_name", "os.system"), r"'os\.system', which this program does not know"),
        (None, _set_config("kwargs", {"bogus": 1}), "cannot build G_ema"),
    ],
)
def test_damaged_files_give_clear_errors(tmp_path, tiny_sg2_model_path, edit_tensors, edit_header, message):
    bad = rewrite(tiny_sg2_model_path, tmp_path / "bad.safetensors", edit_tensors, edit_header)
    with pytest.raises(ModelLoadError, match=message):
        load_model(bad)


def test_truncated_and_foreign_files(tmp_path, tiny_sg2_model_path):
    data = open(tiny_sg2_model_path, "rb").read()
    for cut in (len(data) - 1, len(data) // 2, 200):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelLoadError, match="truncated"):
            load_model(bad)
    plain = tmp_path / "plain.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(ModelLoadError, match="not a stylegan-explorer model"):
        load_model(plain)
    text = tmp_path / "notes.safetensors"
    text.write_text("hello world, not a model")
    with pytest.raises(ModelLoadError, match="neither"):
        load_model(text)


# ---- gan convert / gan info ---------------------------------------------------------------------


def test_convert_pickle_renders_identically(official_modules, tmp_path, capsys):
    pkl = tmp_path / "network-snapshot-000000.pkl"
    ref = write_snapshot(pkl, official_modules, "sg3_t")
    out = tmp_path / "model.safetensors"
    assert main(["convert", str(pkl), str(out)]) == 0
    from_pkl, converted = load_model(pkl), load_model(out)
    assert converted.networks == ["G_ema", "G", "D"] and converted.arch == "stylegan3-t"
    img = render(converted.G, ref["data"])
    assert torch.equal(render(from_pkl.G, ref["data"]), img)
    assert (img - torch.from_numpy(ref["data"]["io/img_psi0.7"][:1])).abs().max().item() <= 1e-4
    assert same_state(from_pkl.D, converted.D) and same_state(from_pkl.G_train, converted.G_train)
    assert converted.metadata["converted_from"] == {"file": pkl.name, "sha256": from_pkl.sha256}
    assert converted.metadata["augment_pipe"]["p"] == pytest.approx(0.125)

    # Refuses to overwrite without --force; overwrites with it.
    before = out.read_bytes()
    assert main(["convert", str(pkl), str(out)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main(["convert", str(pkl), str(out), "--force", "--no-training-nets"]) == 0
    assert load_model(out).networks == ["G_ema"]


def test_generate_gives_identical_pngs_from_pickle_and_converted_file(official_modules, tmp_path):
    """The user-visible promise of `gan convert`: the same seeds give the same pixels."""
    pkl = tmp_path / "network-snapshot-000000.pkl"
    write_snapshot(pkl, official_modules, "sg3_t")
    out = tmp_path / "model.safetensors"
    assert main(["convert", str(pkl), str(out)]) == 0
    images = {}
    for model in (pkl, out):
        outdir = tmp_path / f"png_{model.suffix[1:]}"
        argv = ["generate", "--model", str(model), "--seeds", "0-2", "--psi", "0.7", "--rotate", "10"]
        assert main(argv + ["--outdir", str(outdir)]) == 0
        images[model.suffix] = [np.asarray(Image.open(p)) for p in sorted(outdir.glob("*.png"))]
    assert len(images[".pkl"]) == 3
    for a, b in zip(images[".pkl"], images[".safetensors"]):
        assert np.array_equal(a, b)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["convert", "{missing}", "{dir}/o.safetensors"], "no such file"),
        (["convert", "{model}", "{dir}/o.pkl"], "must end in .safetensors"),
        (["convert", "{model}", "{dir}/nodir/o.safetensors"], "does not exist"),
        (["convert", "{model}", "{model}", "--force"], "same file"),
        (["info", "{missing}"], "no such file"),
    ],
)
def test_cli_errors(tmp_path, tiny_sg2_model_path, capsys, argv, message):
    values = {"missing": str(tmp_path / "missing.pkl"), "dir": str(tmp_path), "model": tiny_sg2_model_path}
    assert main([a.format(**values) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gan {argv[0]}: error:") and message in err


def test_convert_on_a_full_disk_says_so_and_leaves_nothing(
    tmp_path, tiny_sg2_model_path, monkeypatch, capsys
):
    import errno

    import gan.model_io

    def full_disk(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gan.model_io, "save_model", full_disk)
    out = tmp_path / "o.safetensors"
    assert main(["convert", tiny_sg2_model_path, str(out)]) == 2
    err = capsys.readouterr().err
    assert "No space left on device (disk full); nothing was written" in err and not out.exists()


def test_info(full_model, capsys):
    path, G, _, D, meta = full_model
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["arch"] == "stylegan2" and info["resolution"] == 16 and info["num_ws"] == G.num_ws
    assert (info["z_dim"], info["w_dim"], info["c_dim"]) == (16, 16, 0)
    assert info["networks"] == ["G_ema", "G", "D"]
    counts = {"G": sum(p.numel() for p in G.parameters()), "D": sum(p.numel() for p in D.parameters())}
    assert info["parameters"] == counts
    assert info["metadata"] == meta and info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()

    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "arch:        stylegan2" in text and "16x16" in text and "num_ws" in text
    assert f"G {info['parameters']['G']:,}" in text and "directions" in text


def test_info_on_official_pickle(official_modules, tmp_path, capsys):
    pkl = tmp_path / "snap.pkl"
    write_snapshot(pkl, official_modules, "sg2")
    assert main(["info", str(pkl), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    spec = json.loads((FIXTURES / "sg2.json").read_text())
    assert info["arch"] == "stylegan2" and info["resolution"] == spec["init_kwargs"]["img_resolution"]
    assert info["metadata"]["source_format"] == "official-pickle"
    assert info["parameters"]["D"] == sum(np.load(FIXTURES / "disc.npz")[k].size for k in _disc_param_keys())


def _disc_param_keys() -> list[str]:
    from gan.networks import build_discriminator

    spec = json.loads((FIXTURES / "disc.json").read_text())
    return [name for name, _ in build_discriminator(spec["init_kwargs"]).named_parameters()]


def test_pickle_extension_does_not_matter(tmp_path, tiny_sg2_model_path):
    """The format is recognised by content: a .safetensors model named .pkl still loads safely."""
    path = tmp_path / "model.pkl"
    path.write_bytes(open(tiny_sg2_model_path, "rb").read())
    assert load_model(path).arch == "stylegan2"
    path.write_bytes(pickle.dumps({"G_ema": 1}))
    with pytest.raises(ModelLoadError, match="not a StyleGAN network"):
        load_model(path)
