"""`gan project` and `gan generate --latents` round trip on a tiny model, with directions and a
blend applied, and the user errors."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

from gan.cli import main
from gan.edit.directions import Direction, save_directions
from gan.model_io import load_model, save_model
from gan.photo.losses import psnr
from gan.photo.mtcnn import weights_dir
from gan.photo.project import load_projection
from gan.recipe import read_recipe
from tests.support.tiny import make_tiny_generator

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model_and_photo(tmp_path_factory):
    """A tiny StyleGAN2 with one stored direction, and a 48 px 'photo' of one of its images."""
    folder = tmp_path_factory.mktemp("project")
    G = make_tiny_generator("stylegan2")
    path = folder / "tiny.safetensors"
    save_model(path, G, arch="stylegan2", metadata={})
    vector = np.random.default_rng(0).standard_normal(G.w_dim).astype(np.float32)
    save_directions(path, [Direction("smile", "attribute", vector / np.linalg.norm(vector), scale=2.0)])
    z = torch.from_numpy(np.random.RandomState(7).randn(1, G.z_dim).astype(np.float32))
    with torch.no_grad():
        img = G(z, None, noise_mode="const")
    small = ((img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8))[0].numpy()
    photo = folder / "photo.png"
    PIL.Image.fromarray(small).resize((48, 48), PIL.Image.BICUBIC).save(photo)
    return str(path), str(photo), small


def _project(model, photo, out_dir, *extra):
    npz, png = out_dir / "me.npz", out_dir / "me.png"
    argv = ["project", "--model", model, "--image", photo, "--crop", "0,0,48", "--steps", "12"]
    assert main([*argv, "--out", str(npz), "--png", str(png), *extra]) == 0
    return npz, png


def test_project_then_generate_round_trip(model_and_photo, tmp_path, capsys):
    model, photo, small = model_and_photo
    npz, png = _project(model, photo, tmp_path)
    out = capsys.readouterr().out
    assert "PSNR" in out and "me.png" in out
    projection = load_projection(npz)
    assert projection.target.shape == (16, 16, 3) and projection.noise  # StyleGAN2: noise buffers kept
    assert psnr(projection.target, small) > 20  # the 48 px photo cropped back to 16 px
    assert projection.model["sha256"] == load_model(model, training_nets=False).sha256
    assert projection.source["how"] == "crop" and projection.source["photo"].endswith("photo.png")
    recipe = read_recipe(png)
    assert recipe.args.w is not None and set(recipe.args.noise) == set(projection.noise)
    written = np.asarray(PIL.Image.open(png))
    assert np.array_equal(written, projection.image)

    again = tmp_path / "again.png"
    assert main(["generate", "--model", model, "--latents", str(npz), "--out", str(again)]) == 0
    assert np.array_equal(np.asarray(PIL.Image.open(again)), written)


def test_generate_latents_with_a_direction_and_a_blend(model_and_photo, tmp_path):
    model, photo, _ = model_and_photo
    npz, png = _project(model, photo, tmp_path)
    plain = np.asarray(PIL.Image.open(png)).astype(int)

    edited = tmp_path / "edited.png"
    assert (
        main(
            [
                "generate",
                "--model",
                model,
                "--latents",
                str(npz),
                "--direction",
                "smile=3",
                "--out",
                str(edited),
            ]
        )
        == 0
    )
    recipe = read_recipe(edited)
    assert [e.name for e in recipe.args.edits] == ["smile"] and recipe.args.edits[
        0
    ].strength == pytest.approx(6.0)
    assert np.abs(np.asarray(PIL.Image.open(edited)).astype(int) - plain).mean() > 1

    tuned = tmp_path / "tuned.safetensors"
    G = load_model(model, training_nets=False).G
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.startswith("synthesis.b16") and p.numel() > 1:
                p.add_(torch.randn_like(p) * 0.3 * p.std())
    save_model(tuned, G, arch="stylegan2", metadata={})
    blended = tmp_path / "blended.png"
    argv = [
        "generate",
        "--model",
        model,
        "--latents",
        str(npz),
        "--blend",
        str(tuned),
        "--blend-resolution",
        "16",
    ]
    assert main([*argv, "--out", str(blended)]) == 0
    diff = np.abs(np.asarray(PIL.Image.open(blended)).astype(int) - plain).mean()
    assert diff > 0.5  # the fine layers changed...
    assert psnr(np.asarray(PIL.Image.open(blended)), plain.astype(np.uint8)) > 12  # ...the picture did not


def test_w_plus_and_outdir(model_and_photo, tmp_path):
    model, photo, _ = model_and_photo
    npz, _ = _project(model, photo, tmp_path, "--w-plus")
    projection = load_projection(npz)
    assert projection.w_plus and not np.allclose(projection.ws, projection.ws[0])
    assert main(["generate", "--model", model, "--latents", str(npz), "--outdir", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "me.png").is_file()


def _fails(argv, capsys, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err, err


def test_user_errors(model_and_photo, tmp_path, capsys):
    model, photo, _ = model_and_photo
    base = ["project", "--model", model, "--image", photo]
    _fails([*base, "--crop", "0,0", "--out", str(tmp_path / "a.npz")], capsys, "expected x,y,size")
    _fails([*base, "--crop", "0,0,48", "--out", str(tmp_path / "a.txt")], capsys, "must end in .npz")
    _fails(
        [*base, "--image", str(tmp_path / "none.jpg"), "--out", str(tmp_path / "a.npz")],
        capsys,
        "does not exist",
    )
    npz, _ = _project(model, photo, tmp_path)
    gen = ["generate", "--model", model, "--latents", str(npz)]
    _fails([*gen, "--out", str(tmp_path / "x.png"), "--direction", "frown=2"], capsys, "no such direction")
    _fails([*gen, "--out", str(tmp_path / "x.png"), "--direction", "smile"], capsys, "NAME=VALUE")
    _fails([*gen, "--out", str(tmp_path / "x.png"), "--psi", "0.5"], capsys, "apply to seeds")
    assert main(gen) == 0  # no --out: beside the latents
    assert (tmp_path / "me-render.png").is_file()
    (tmp_path / "bad.npz").write_bytes(b"x")
    _fails(
        ["generate", "--model", model, "--latents", str(tmp_path / "bad.npz"), "--out", "x.png"],
        capsys,
        "not a projection",
    )
    with pytest.raises(SystemExit):
        main(["generate", "--model", model, "--latents", str(npz), "--seeds", "0"])


def test_photo_without_a_face_asks_for_a_crop_box(model_and_photo, tmp_path, capsys):
    try:
        weights_dir()
    except Exception as exc:
        pytest.skip(f"MTCNN weights not installed: {exc}")
    model, photo, _ = model_and_photo
    _fails(
        ["project", "--model", model, "--image", photo, "--out", str(tmp_path / "a.npz")], capsys, "--crop"
    )
