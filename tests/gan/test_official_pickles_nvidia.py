"""Model files written by NVIDIA's own code open, and give NVIDIA's numbers.

`../shared/fixtures/official-pickles/` (beside the repository) holds small network pickles written
by the StyleGAN3 repo (SG3-T; SG2 with fp16 blocks), the StyleGAN2-ADA-pytorch repo and in the
TensorFlow-era layout, with the ws, images and D logits NVIDIA's code computes for them. They embed
NVIDIA's source text, so they are read from there, never copied into the project. Skipped with the
reason where ../shared is absent; under CI (which has it) a missing file fails.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gan.cli import main
from gan.model_io import load_model
from tests.support.paths import official_pickle

# name -> (arch, family of G_ema, module of G_ema, era)
PICKLES = {
    "sg3t16": ("stylegan3-t", "stylegan3", "training/networks_stylegan3.py", "pytorch"),
    "sg2s32fp16": ("stylegan2", "stylegan2", "training/networks_stylegan2.py", "pytorch"),
    "ada32": ("stylegan2", "stylegan2-ada", "training/networks.py", "pytorch"),
    "tf32": ("stylegan2", "stylegan2-tf", None, "tensorflow"),
}
IMAGE_TOL, WS_TOL = 1e-4, 1e-4
D_TOL = 2e-3  # NVIDIA's D runs its fp16 blocks in fp16 even on the CPU; ours runs float32


def reference(name: str) -> dict[str, np.ndarray]:
    with np.load(official_pickle(f"{name}.npz")) as npz:
        return {k: npz[k] for k in npz.files}


def max_diff(a: torch.Tensor, b: np.ndarray) -> float:
    assert tuple(a.shape) == b.shape
    return (a - torch.from_numpy(b)).abs().max().item()


@pytest.mark.parametrize("name", sorted(PICKLES))
def test_loads_and_matches_nvidia(name):
    arch, family, module, era = PICKLES[name]
    model = load_model(official_pickle(f"{name}.pkl"))
    ref = reference(name)
    assert model.arch == arch and model.networks == ["G_ema", "G", "D"]
    z, c = torch.from_numpy(ref["z"]), torch.from_numpy(ref["c"])
    with torch.no_grad():
        ws = model.G.mapping(z, c, truncation_psi=float(ref["psi"]))
        img = model.G.synthesis(ws, noise_mode="const")
        logits = model.D(torch.from_numpy(ref["img"]), c)
    assert max_diff(ws, ref["ws"]) <= WS_TOL
    assert max_diff(img, ref["img"]) <= IMAGE_TOL
    assert max_diff(logits, ref["d_logits"]) <= D_TOL

    meta = model.metadata
    assert meta["era"] == era and meta["official_networks"]["G_ema"]["family"] == family
    if module:
        assert meta["official_networks"]["G_ema"]["module"] == module
        assert meta["official_networks"]["G_ema"]["class_name"] == "Generator"  # bare, as in every real file
        assert meta["augment_pipe"]["p"] == pytest.approx(float(ref["augment_p"]), abs=1e-6)
    else:
        assert meta["augment_pipe"] is None  # TF-era files have no augment pipe
    json.dumps(meta)


@pytest.mark.parametrize("name", sorted(PICKLES))
def test_gan_info_shows_where_it_came_from(name, capsys):
    arch, family, module, era = PICKLES[name]
    assert main(["info", str(official_pickle(f"{name}.pkl"))]) == 0
    out = capsys.readouterr().out
    assert f"arch:        {arch}" in out
    assert ("TensorFlow era" if era == "tensorflow" else "PyTorch era") in out
    if module:
        assert f"G_ema: Generator of {module}" in out and "p = 0.123" in out


@pytest.mark.parametrize("name", sorted(PICKLES))
def test_convert_and_generate_give_nvidias_image(name, tmp_path):
    """`gan convert` writes our format from the file (same networks, same images), and `gan
    generate` renders identical PNGs from the pickle and from the converted file."""
    src = official_pickle(f"{name}.pkl")
    converted = tmp_path / f"{name}.safetensors"
    assert main(["convert", str(src), str(converted)]) == 0
    model = load_model(converted)
    assert model.networks == ["G_ema", "G", "D"] and model.arch == PICKLES[name][0]
    assert model.metadata["era"] == PICKLES[name][3]
    ref = reference(name)
    z, c = torch.from_numpy(ref["z"]), torch.from_numpy(ref["c"])
    with torch.no_grad():
        img = model.G.synthesis(model.G.mapping(z, c, truncation_psi=float(ref["psi"])), noise_mode="const")
    assert max_diff(img, ref["img"]) <= IMAGE_TOL

    pngs = {}
    for label, path in (("pkl", src), ("converted", converted)):
        out = tmp_path / label
        argv = ["generate", "--model", str(path), "--seeds", "0-1", "--psi", "0.7", "--outdir", str(out)]
        assert main(argv) == 0
        pngs[label] = sorted(out.glob("*.png"))
        assert len(pngs[label]) == 2
    for a, b in zip(pngs["pkl"], pngs["converted"]):
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
