"""bench.compare_archs on three tiny 16 px models (SG2, SG3-T, SG3-R) and a small toon data set:
the markdown table has one row per model with every column filled, the criteria lines compare the
architectures, and --sidecar records what the explorer's comparison view reads."""

from __future__ import annotations

import json

import pytest

from bench.compare_archs import ModelRow, main
from gan.compare import read_recorded_metrics, table_cells
from gan.data.toon import ToonConfig, make_toon_dataset
from gan.model_io import save_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def toon16(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("toon") / "toon16.zip"
    make_toon_dataset(ToonConfig(out=str(out), count=16, resolution=16, seed=99))
    return str(out)


@pytest.fixture(scope="module")
def three_models(tmp_path_factory) -> list[str]:
    from tests.support.tiny import make_tiny_generator

    root = tmp_path_factory.mktemp("archs")
    paths = []
    for arch in ("stylegan2", "stylegan3-t", "stylegan3-r"):
        path = root / f"tiny-{arch}.safetensors"
        save_model(path, make_tiny_generator(arch), arch=arch)
        paths.append(str(path))
    return paths


def test_table_for_three_architectures(three_models, toon16, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("GAN_INCEPTION_WEIGHTS", raising=False)
    out = tmp_path / "docs" / "cmp.md"
    argv = [
        "--models",
        *three_models,
        "--data",
        toon16,
        "--num",
        "4",
        "--swd-num",
        "4",
        "--batch",
        "4",
        "--out",
        str(out),
        "--sidecar",
        "--note",
        "A tiny test.",
    ]
    assert main(argv) == 0
    doc = out.read_text()
    rows = [line for line in doc.splitlines() if line.startswith("| `tiny-")]
    assert len(rows) == 3
    for row, arch in zip(rows, ("StyleGAN2", "StyleGAN3-T", "StyleGAN3-R")):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == arch and cells[2] == "16"
        assert len(cells) == 9 and "n/a" not in cells  # EQ x3, SWD, FD / KID toon (no Inception here)
        assert cells[3].startswith("**") and cells[3].count("/") == 1  # pooled, then seed 0 / seed 1
    header = next(line for line in doc.splitlines() if line.startswith("| model |"))
    assert "FD toon (not FID)" in header and "| FID |" not in header  # no FID column without weights
    assert "Not computed: fid50k_full, kid50k_full: " in doc and "not FID" in doc
    assert "EQ-T of StyleGAN3-T minus StyleGAN2" in doc and "EQ-R of StyleGAN3-R minus StyleGAN3-T" in doc
    assert "python -m bench.compare_archs --models" in doc and "66.65" in doc  # command, paper numbers
    assert "**Note:** A tiny test." in doc
    raw = json.loads(out.with_suffix(".json").read_text())
    assert set(raw["tiny-stylegan2"]["values"]) == {
        "eqt8_int",
        "eqt8_frac",
        "eqr8",
        "swd4",
        "fd_toon4_full",
        "kid_toon4_full",
    }
    # The explorer's table reads the sidecars.
    cells = table_cells(read_recorded_metrics(three_models[2]))
    assert (
        cells["eqr"].endswith("(8)") and cells["fd_toon"].endswith("(4)") and cells["fid"] == "not measured"
    )


def test_pooled_psnr_is_the_psnr_of_the_mean_error():
    row = ModelRow("m", "m", "stylegan2", 16, "", eq={"eqt_int": {0: 20.0, 1: 30.0}})
    # MSE 4e-2 and 4e-3: mean 2.2e-2 -> 10 log10(4 / 0.022) = 22.60 dB (not the mean 25 dB).
    assert row.pooled("eqt_int") == pytest.approx(22.596, abs=1e-3)


def test_bad_counts_are_refused(three_models, toon16, capsys):
    assert main(["--models", three_models[0], "--data", toon16, "--num", "1"]) == 2
    assert "at least 2" in capsys.readouterr().err


def _table_rows(path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.startswith("| `tiny-")]


def test_cache_reuses_rows_of_models_measured_before(three_models, toon16, tmp_path, monkeypatch):
    # The table of three models can be made when the last finishes training without measuring the
    # first two again: their rows come from --cache (keyed by file hash and settings).
    import bench.compare_archs as compare_archs

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("GAN_INCEPTION_WEIGHTS", raising=False)
    cache = ["--cache", str(tmp_path / "rows")]
    base = ["--data", toon16, "--swd-num", "2", "--batch", "2", *cache]
    first, both, other = tmp_path / "first.md", tmp_path / "both.md", tmp_path / "other.md"
    assert main(["--models", *three_models[:2], *base, "--num", "2", "--out", str(first)]) == 0
    measured = []
    real_measure = compare_archs.measure

    def counting_measure(path, *rest):
        measured.append(path)
        return real_measure(path, *rest)

    monkeypatch.setattr(compare_archs, "measure", counting_measure)
    assert main(["--models", *three_models, *base, "--num", "2", "--out", str(both)]) == 0
    assert measured == [three_models[2]]  # only the new model
    assert _table_rows(both)[:2] == _table_rows(first)
    # Other settings give other numbers: measured again.
    measured.clear()
    assert main(["--models", three_models[0], *base, "--num", "3", "--out", str(other)]) == 0
    assert measured == [three_models[0]]
