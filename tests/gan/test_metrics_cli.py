"""`gan metrics` end to end on tiny saved models (no Inception weights: FID is skipped)."""

import json

import numpy as np
import torch
from PIL import Image

from gan.cli import main
from gan.metrics.runner import generated_batches
from gan.model_io import load_model


def _png_folder(folder, model_path, count=8):
    folder.mkdir()
    G = load_model(model_path).G
    images = torch.cat(list(generated_batches(G, count, 8, seed=123)))
    for i, img in enumerate(images):
        Image.fromarray(np.ascontiguousarray(img.permute(1, 2, 0).numpy())).save(folder / f"{i}.png")
    return folder


def test_cli_json_reports_values_and_skipped_fid(tiny_sg3t_model_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = _png_folder(tmp_path / "data", tiny_sg3t_model_path)
    code = main(
        [
            "metrics",
            "--model",
            tiny_sg3t_model_path,
            "--data",
            str(data),
            "--num",
            "8",
            "--json",
            "--metrics",
            "fid50k_full,swd,eqt50k_int,eqr50k",
            "--inception",
            str(tmp_path / "missing.pth"),
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["results"]) == {"swd", "eqt50k_int", "eqr50k"}
    assert "missing.pth" in out["skipped"]["fid50k_full"]
    assert out["results"]["eqt50k_int"] > 30 and out["results"]["swd"] > 0


def test_cli_table_and_errors(tiny_sg2_model_path, capsys):
    assert main(["metrics", "--model", tiny_sg2_model_path, "--metrics", "eqt50k_frac", "--num", "2"]) == 0
    out = capsys.readouterr().out
    assert "eqt50k_frac" in out and "skipped" not in out  # StyleGAN2: its constant is moved
    assert main(["metrics", "--model", tiny_sg2_model_path, "--metrics", "fid50k_full", "--num", "2"]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["metrics", "--model", tiny_sg2_model_path, "--metrics", "nope"]) == 2
    assert "unknown metric" in capsys.readouterr().err
