"""The models shipped in resources/models: what a fresh install opens and blends."""

from __future__ import annotations

from pathlib import Path

from gan.edit.blend import check_blendable
from gan.edit.directions import load_directions
from gan.model_defaults import default_seed
from gan.model_io import load_model
from gan.resources import RESOURCES

MODELS = RESOURCES / "models"
DEFAULT = MODELS / "default-toon64-sg3t.safetensors"
ANIME = MODELS / "toon64-sg3t-anime.safetensors"


def test_default_model_is_a_stylegan3_t_toon_model_with_its_sliders():
    model = load_model(DEFAULT)
    assert model.arch == "stylegan3-t" and model.G.img_resolution == 64
    assert model.metadata["training"]["config"]["data"].endswith("toon64.zip")
    directions = {d.name: d for d in load_directions(model)}
    names = set(directions)
    assert "anime" in names and "pc0" in names
    # The anime slider stops where faces hold (docs/default_model_anime_range.txt) and a fresh
    # start opens on a seed with a clear face.
    assert directions["anime"].range == (-3.0, 4.0)
    assert default_seed(model.metadata) == 11
    assert {f"hair_colour={c}" for c in ("black", "blonde", "blue", "brown", "red")} <= names


def test_anime_model_is_fine_tuned_from_the_default_and_blends_with_it():
    base, anime = load_model(DEFAULT), load_model(ANIME)
    config = anime.metadata["training"]["config"]
    assert config["finetune"] and Path(config["data"]).name == "toon64_anime.zip"
    assert check_blendable(base, anime) is None
