"""`gan generate` and seed parsing: outputs, recipes and the user errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan.cli import main
from gan.errors import UserError
from gan.model_io import load_model
from gan.recipe import read_recipe
from gan.render import RenderArgs, Renderer
from gan.seeds import MAX_SEED, parse_seeds

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "spec, seeds",
    [
        ("0-3", [0, 1, 2, 3]),
        ("1,5,9-11", [1, 5, 9, 10, 11]),
        (" 7 ", [7]),
        ("3,3,2-3", [3, 2]),
        (f"{MAX_SEED}", [MAX_SEED]),
        ("4-4", [4]),
    ],
)
def test_parse_seeds(spec, seeds):
    assert parse_seeds(spec) == seeds


@pytest.mark.parametrize(
    "spec, message",
    [
        ("7-3", "backwards"),
        ("abc", "bad seed"),
        ("-1", "bad seed|out of range"),
        ("1,,2", "empty"),
        ("", "empty"),
        (f"{MAX_SEED + 1}", "out of range"),
        ("0-4000000000", "more than"),
        ("1-x", "bad seed"),
    ],
)
def test_parse_seeds_errors(spec, message):
    with pytest.raises(UserError, match=message):
        parse_seeds(spec)


def test_generate_writes_pngs_with_recipes(tiny_sg3t_model_path, tmp_path, capsys):
    outdir = tmp_path / "out"
    options = "--seeds 1,3-4 --psi 0.7 --translate 0.1,-0.2 --rotate 15 --trunc-cutoff 4".split()
    assert main(["generate", "--model", tiny_sg3t_model_path, "--outdir", str(outdir), *options]) == 0
    assert sorted(p.name for p in outdir.iterdir()) == ["seed0001.png", "seed0003.png", "seed0004.png"]
    assert "3/3" in capsys.readouterr().err  # the progress bar went to stderr

    model = load_model(tiny_sg3t_model_path)
    expected = Renderer(model).render(
        RenderArgs(seed=3, psi=0.7, truncation_cutoff=4, translate=(0.1, -0.2), rotate=15.0)
    )
    with Image.open(outdir / "seed0003.png") as im:
        assert np.array_equal(np.asarray(im), expected.image)
    recipe = read_recipe(outdir / "seed0003.png")
    assert recipe.model.sha256 == model.sha256 and recipe.model.arch == "stylegan3-t"
    assert (recipe.args.seed, recipe.args.psi, recipe.args.truncation_cutoff) == (3, 0.7, 4)
    assert recipe.args.translate == (0.1, -0.2) and recipe.args.rotate == 15.0
    assert np.array_equal(Renderer(model).render(recipe.args).image, expected.image)


def _fails(argv, capsys, *fragments) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gan generate: error: "), err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.mark.parametrize("seeds", ["7-3", "abc", "-1", str(2**32)])
def test_generate_bad_seeds(tiny_sg2_model_path, tmp_path, capsys, seeds):
    _fails(["generate", "--model", tiny_sg2_model_path, "--seeds", seeds, "--outdir", str(tmp_path)], capsys)


def test_generate_model_errors(tmp_path, capsys):
    missing = tmp_path / "nope.safetensors"
    _fails(["generate", "--model", str(missing), "--seeds", "0", "--outdir", str(tmp_path / "o")], capsys)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(os.urandom(200))
    _fails(["generate", "--model", str(corrupt), "--seeds", "0", "--outdir", str(tmp_path / "o")], capsys)
    assert not (tmp_path / "o").exists()


def test_generate_unwritable_outdir(tiny_sg2_model_path, tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    base = ["generate", "--model", tiny_sg2_model_path, "--seeds", "0"]
    _fails(base + ["--outdir", str(a_file / "sub")], capsys, "--outdir")
    _fails(base + ["--outdir", str(a_file)], capsys, "not a directory")


def test_generate_options_on_sg2(tiny_sg2_model_path, tmp_path, capsys):
    base = ["generate", "--model", tiny_sg2_model_path, "--seeds", "0", "--outdir", str(tmp_path / "o")]
    # StyleGAN2 translates / rotates its 4x4 constant: a different picture, no error.
    assert main(base + ["--rotate", "30"]) == 0
    turned = np.asarray(Image.open(tmp_path / "o" / "seed0000.png"))
    assert main(base) == 0
    assert not np.array_equal(turned, np.asarray(Image.open(tmp_path / "o" / "seed0000.png")))
    assert main(base + ["--class", "1"]) == 2 and "not conditional" in capsys.readouterr().err
    assert main(base + ["--trunc-cutoff", "99"]) == 2 and "--trunc-cutoff" in capsys.readouterr().err


def test_generate_sg2_with_noise_mode(tiny_sg2_model_path, tmp_path):
    outdir = tmp_path / "o"
    options = "--seeds 12 --noise-mode none".split()
    assert main(["generate", "--model", tiny_sg2_model_path, "--outdir", str(outdir), *options]) == 0
    recipe = read_recipe(outdir / "seed0012.png")
    assert recipe.args.noise_mode == "none" and recipe.model.arch == "stylegan2"


def test_generate_conditional_needs_class(tmp_path, capsys, tiny_model_file):
    path = tiny_model_file(tmp_path / "cond.safetensors", "stylegan2", c_dim=2)
    base = ["generate", "--model", path, "--seeds", "0", "--outdir", str(tmp_path / "o")]
    _fails(base, capsys, "--class")
    _fails(base + ["--class", "2"], capsys, "out of range")
    assert main(base + ["--class", "1"]) == 0
    assert read_recipe(tmp_path / "o" / "seed0000.png").args.class_idx == 1


def test_generate_subprocess_smoke(tiny_sg2_model_path, tmp_path):
    outdir = tmp_path / "out"

    def gan_generate(seeds: str) -> subprocess.CompletedProcess:
        argv = ["generate", "--model", tiny_sg2_model_path, "--seeds", seeds, "--outdir", str(outdir)]
        cmd = [sys.executable, "-m", "gan.cli", *argv]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)

    proc = gan_generate("0-1")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in outdir.iterdir()) == ["seed0000.png", "seed0001.png"]
    bad = gan_generate("7-3")
    assert bad.returncode == 2 and "gan generate: error:" in bad.stderr and "Traceback" not in bad.stderr


def test_generate_writes_a_grid_of_all_seeds(tiny_sg3t_model_path, tmp_path, capsys):
    outdir = tmp_path / "o"
    base = ["generate", "--model", tiny_sg3t_model_path, "--outdir", str(outdir)]
    assert main([*base, "--seeds", "0-4", "--grid", "3"]) == 0
    grid = np.asarray(Image.open(outdir / "grid.png"))
    one = np.asarray(Image.open(outdir / "seed0001.png"))
    h, w = one.shape[:2]
    assert grid.shape[:2] == (2 * h, 3 * w)  # 5 seeds, 3 per row
    np.testing.assert_array_equal(grid[:h, w : 2 * w], one)
    assert main([*base, "--seeds", "0", "--grid", "-1"]) == 2
    assert "--grid" in capsys.readouterr().err
