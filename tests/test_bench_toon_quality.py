"""bench.toon_quality / gan.edit.quality on a 32 px model and a small 32 px toon data set: the
report has sane numbers, the init SWD is computed, and the shipped classifier recognises the real
toon images (the reference point the generated-image numbers are read against)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bench.toon_quality import format_report, main
from gan.data.dataset import seeded_subset
from gan.data.toon import ToonConfig, make_toon_dataset
from gan.edit.classifier import load_classifier
from gan.edit.quality import fresh_generator, head_stats, measure_quality
from gan.errors import UserError
from gan.model_io import save_model
from gan.resources import SHIPPED_CLASSIFIER
from tests.support.tiny import tiny_kwargs

TINY_32 = tiny_kwargs("stylegan2", img_resolution=32)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def toon32(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("toon") / "toon32.zip"
    make_toon_dataset(ToonConfig(out=str(out), count=40, resolution=32, seed=4321))
    return str(out)


@pytest.fixture(scope="module")
def model32(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("models") / "tiny32.safetensors"
    save_model(path, fresh_generator("stylegan2", TINY_32, seed=1), arch="stylegan2", metadata={"note": "t"})
    return str(path)


@pytest.fixture(scope="module")
def classifier():
    return load_classifier(SHIPPED_CLASSIFIER)


def test_report_numbers(toon32, classifier):
    G = fresh_generator("stylegan2", TINY_32, seed=1)
    G0 = fresh_generator("stylegan2", TINY_32, seed=0)
    stages = []
    report = measure_quality(
        G,
        classifier,
        toon32,
        seeds=range(1000, 1012),
        num_real=32,
        swd_num=16,
        G_init=G0,
        progress=lambda done, total, what="": stages.append(what),
    )
    assert (report.num_generated, report.num_real, report.swd_num) == (12, 32, 16)
    assert set(report.heads) == set(classifier.heads) == {"style", "hair_colour", "glasses"}
    for head, s in report.heads.items():
        assert s.classes == classifier.heads[head]
        for rates in (s.generated_rates, s.real_rates):
            assert len(rates) == len(s.classes) and min(rates) >= 0
            assert sum(rates) == pytest.approx(1.0)
        k = len(s.classes)
        for conf in (s.generated_confidence, s.real_confidence):
            assert 1 / k - 1e-6 <= conf <= 1
        assert 0 <= s.generated_confident <= 1 and 0 <= s.real_confident <= 1
        assert s.rate_distance == pytest.approx(
            0.5 * sum(abs(g - r) for g, r in zip(s.generated_rates, s.real_rates))
        )
    # The reference point: the classifier sees real toon images (32 px, resized to 64) correctly.
    assert report.heads["style"].real_accuracy >= 0.9
    assert report.heads["hair_colour"].real_accuracy >= 0.8
    assert report.heads["style"].real_confident >= 0.8
    # Two pyramid levels at 32 px (32 and 16) and their mean, for the model and the initial model.
    assert set(report.swd) == set(report.swd_init) == {"swd_32", "swd_16", "swd"}
    assert report.swd["swd"] > 0 and report.swd_init["swd"] > 0
    assert report.swd["swd"] != report.swd_init["swd"]  # different weights, different distance
    assert {"rendering seeds", "reading real images", "SWD initial model images"} <= set(stages)
    text = format_report(report, "model", "init")
    assert "| style | anime |" in text and "| init |" in text
    assert text.index("| style | photo |") < text.index("| glasses | no |")  # style first


def test_seeds_define_the_images(toon32, classifier):
    """Same seeds, same report; the real subset is the seeded official rule."""
    G = fresh_generator("stylegan2", TINY_32, seed=1)
    a = measure_quality(G, classifier, toon32, seeds=[5, 6, 7], num_real=8, swd_num=0)
    b = measure_quality(G, classifier, toon32, seeds=[5, 6, 7], num_real=8, swd_num=0)
    assert a.heads == b.heads and a.swd == {} and a.swd_init is None
    idx = seeded_subset(40, 8, seed=0)
    assert len(idx) == 8 and list(idx) == sorted(set(idx.tolist()))
    assert list(seeded_subset(40, 8)) == list(idx)


def test_head_stats_counts():
    probs = np.array([[0.95, 0.05], [0.2, 0.8], [0.5, 0.5]], dtype=np.float32)
    s = head_stats(["a", "b"], probs, probs[:2], 0.9, real_labels=np.array([0, 0]))
    assert s.generated_rates == pytest.approx([2 / 3, 1 / 3])  # argmax ties go to the first class
    assert s.generated_confident == pytest.approx(1 / 3)
    assert s.generated_confidence == pytest.approx((0.95 + 0.8 + 0.5) / 3)
    assert s.real_accuracy == pytest.approx(0.5)
    assert s.real_rates == pytest.approx([0.5, 0.5])
    assert s.rate_distance == pytest.approx(1 / 6)


def test_fresh_generator_is_seeded_and_leaves_global_rng():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = fresh_generator("stylegan2", TINY_32, seed=0)
    after = torch.rand(1)
    b = fresh_generator("stylegan2", TINY_32, seed=0)
    assert before == after
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_errors(toon32, classifier):
    G = fresh_generator("stylegan2", TINY_32, seed=1)
    with pytest.raises(UserError, match="only 40 images"):
        measure_quality(G, classifier, toon32, seeds=[1], num_real=41, swd_num=0)
    G16 = fresh_generator("stylegan2", dict(TINY_32, img_resolution=16), seed=1)
    with pytest.raises(UserError, match="equal size"):
        measure_quality(G16, classifier, toon32, seeds=[1], num_real=4, swd_num=4)


def test_cli(toon32, model32, capsys, monkeypatch, tmp_path):
    import bench.common

    doc = tmp_path / "benchmarks.md"
    monkeypatch.setattr(bench.common, "BENCH_DOC", doc)
    argv = ["--model", model32, "--data", toon32, "--seeds", "0-3", "--num-real", "8", "--swd-num", "8"]
    assert main(argv + ["--write"]) == 0
    out = capsys.readouterr().out
    assert "| fresh stylegan2 (same g_kwargs, seed 0) |" in out and "classifier accuracy on real" in out
    text = doc.read_text()
    assert "## Default model quality" in text and "--swd-num 8" in text and "Machine:" in text
    # --init given: the init row is that file; a model of another size is a clear error (exit 2).
    assert main(argv + ["--init", model32]) == 0
    assert f"init `{Path(model32).name}`" in capsys.readouterr().out
    assert main(argv[:2] + ["--data", toon32, "--num-real", "999"]) == 2
    assert "only 40 images" in capsys.readouterr().err
