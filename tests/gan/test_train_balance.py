"""Class balance in training: the term moves the class shares of G's images to the target and stops
there (no pull to an extreme), reads its target from the data set's labels with clear errors, and
runs inside `gan train` with its shares in the stats."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import PIL.Image
import pytest
import torch

from gan.data.dataset_tool import DatasetWriter
from gan.edit.classifier import ClassifierConfig, ClassifierNet, save_classifier
from gan.errors import UserError
from gan.train.balance import BalancedHead, ClassBalance, label_shares
from gan.train.config import TrainConfig
from gan.train.loop import run
from tests.support.tiny import TINY_TRAIN as TINY
from tests.support.tiny import make_tiny_generator

pytestmark = pytest.mark.usefixtures("one_thread")


class TintNet(torch.nn.Module):
    """'tint' logits (green, red) from the image's mean red minus mean green."""

    config = SimpleNamespace(resolution=16)

    def forward(self, x):
        m = x.mean(dim=(2, 3))
        red = 20 * (m[:, 0] - m[:, 1])
        return {"tint": torch.stack([-red, red], 1)}


def _tint_balance(target_red: float, weight: float = 1.0) -> ClassBalance:
    head = BalancedHead("tint", ["green", "red"], torch.tensor([1 - target_red, target_red]), weight)
    return ClassBalance(TintNet(), [head], seed=0)


def _red_share(G, n: int = 256) -> float:
    with torch.no_grad():
        img = G(torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(99)), torch.zeros([n, 0]))
    return float(TintNet()(img)["tint"].softmax(1)[:, 1].mean())


@pytest.mark.parametrize("target_red", [0.85, 0.05])
def test_balance_moves_the_generated_share_to_the_target_and_stays_near_it(target_red):
    # Only the balance term trains G here, so nothing else holds the images in place: the share
    # swings around the target (the running share lags) but must settle near it, not at 0 or 1.
    torch.manual_seed(0)
    G = make_tiny_generator("stylegan2", seed=1).requires_grad_(True)
    start = _red_share(G)
    balance = _tint_balance(target_red)
    opt = torch.optim.Adam(G.parameters(), lr=0.001)
    late = []
    for step in range(300):
        loss, shares = balance.loss(G(torch.randn([16, G.z_dim]), torch.zeros([16, 0])))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step >= 200:
            late.append(float(shares["tint"][1]))
    print(f"red share {start:.3f} -> {np.mean(late):.3f} over the last 100 steps (target {target_red})")
    assert abs(start - target_red) > 0.25
    assert abs(np.mean(late) - target_red) < 0.08
    assert 0.02 < _red_share(G) < 0.98


def test_share_counts_ambiguous_images_by_their_most_likely_class():
    """Images that all lean red only slightly (mean probability of red 0.55): the share counts them
    all as red, so against a 50/50 target the term sees the real excess and pulls them towards
    green; a mean probability would call the share nearly right."""
    img = torch.zeros([32, 3, 16, 16], requires_grad=True)
    with torch.no_grad():
        img[:, 0] = 0.01  # red - green = 0.01: logit 0.2 for red
    balance = _tint_balance(0.5)
    loss, shares = balance.loss(img)
    assert shares["tint"].tolist() == [0.0, 1.0]
    assert 0.5 < float(TintNet()(img.detach())["tint"].softmax(1)[:, 1].mean()) < 0.6
    loss.backward()
    red_minus_green = img.grad[:, 0].sum() - img.grad[:, 1].sum()
    assert red_minus_green > 0  # descending the loss lowers red relative to green


def test_each_head_has_its_weight():
    """--balance-head style,glasses:1: glasses at weight 1, style at --balance-weight."""
    config = TrainConfig(data="x", outdir="y", balance_head=" style, glasses:1 ", balance_weight=8)
    assert config.balance_heads() == [("style", 8.0), ("glasses", 1.0)]
    for bad in (" , ", "glasses:x", "glasses:-1", ":2", "style,glasses:nan"):
        with pytest.raises(UserError, match="--balance-head"):
            TrainConfig(data="x", outdir="y", balance_head=bad).balance_heads()
    weak, strong = _tint_balance(0.5, weight=1.0), _tint_balance(0.5, weight=4.0)
    img = torch.zeros([8, 3, 16, 16])
    img[:, 0] = 0.05
    assert torch.isclose(strong.loss(img)[0], 4 * weak.loss(img)[0])


def _toon_like(path, styles: list[int], classes=("photo", "anime")) -> str:
    """A tiny data set whose dataset.json carries per-image 'style' and 'glasses' attributes
    (glasses on every third image)."""
    with DatasetWriter(path) as writer:
        names = [writer.add(np.full([16, 16, 3], 60 + 120 * s, dtype=np.uint8)) for s in styles]
        writer.meta["attributes"] = [
            [name, {"style": s, "glasses": int(i % 3 == 0)}] for i, (name, s) in enumerate(zip(names, styles))
        ]
        writer.meta["attribute_classes"] = {"style": list(classes), "glasses": ["no", "yes"]}
    return str(path)


def test_label_shares_count_the_data_sets_classes_and_explain_bad_labels(tmp_path):
    data = _toon_like(tmp_path / "a.zip", [0, 1, 1, 1])
    assert label_shares(data, "style", ["photo", "anime"]).tolist() == [0.25, 0.75]
    with pytest.raises(UserError, match="no 'hair_colour' attribute"):
        label_shares(data, "hair_colour", ["black", "brown"])
    with pytest.raises(UserError, match="differ from the classifier"):
        label_shares(data, "style", ["anime", "photo"])
    plain = tmp_path / "plain"
    plain.mkdir()
    PIL.Image.new("RGB", (16, 16)).save(plain / "a.png")
    with pytest.raises(UserError, match="no dataset.json"):
        label_shares(plain, "style", ["photo", "anime"])


def test_training_with_class_balance_reports_the_shares(tmp_path):
    data = _toon_like(tmp_path / "toon.zip", [0, 1] * 16)
    net = ClassifierNet(ClassifierConfig(heads={"style": ["photo", "anime"]}, resolution=16, channels=(8, 8)))
    clf = str(tmp_path / "clf.safetensors")
    save_classifier(clf, net)
    base = dict(cfg="stylegan2", data=data, outdir=str(tmp_path / "runs"), batch=8, aug="noaug", **TINY)
    with pytest.raises(UserError, match="balance-classifier"):
        TrainConfig(**base, balance_classifier=str(tmp_path / "missing.safetensors")).validate()
    with pytest.raises(UserError, match="no head 'glasses'"):
        run(TrainConfig(**base, kimg=0.016, balance_classifier=clf, balance_head="glasses"))
    ticks = []
    summary = run(
        TrainConfig(**base, kimg=0.032, tick_kimg=0.016, balance_classifier=clf), on_tick=ticks.append
    )
    assert summary.reason == "done"
    stats = ticks[-1].stats
    shares = stats["Balance/share/style=photo"], stats["Balance/share/style=anime"]
    assert np.isclose(sum(shares), 1.0, atol=1e-5) and "Loss/G/balance" in stats
    assert not any(name.startswith("Balance/share/glasses") for name in stats)


def test_training_balances_several_heads_at_once(tmp_path):
    """--balance-head style,glasses: both heads balanced, each head's shares in the stats; runs
    written while the retired balance_temperature option existed still resume."""
    data = _toon_like(tmp_path / "toon.zip", [0, 1] * 16)
    heads = {"style": ["photo", "anime"], "glasses": ["no", "yes"]}
    net = ClassifierNet(ClassifierConfig(heads=heads, resolution=16, channels=(8, 8)))
    clf = str(tmp_path / "clf.safetensors")
    save_classifier(clf, net)
    base = dict(cfg="stylegan2", data=data, outdir=str(tmp_path / "runs"), batch=8, aug="noaug", **TINY)
    ticks = []
    config = TrainConfig(
        **base, kimg=0.016, tick_kimg=0.016, balance_classifier=clf, balance_head="style, glasses"
    )
    assert run(config, on_tick=ticks.append).reason == "done"
    stats = ticks[-1].stats
    for head, classes in heads.items():
        shares = [stats[f"Balance/share/{head}={name}"] for name in classes]
        assert np.isclose(sum(shares), 1.0, atol=1e-5)
    with pytest.raises(UserError, match="no head 'hair'"):
        run(TrainConfig(**base, kimg=0.016, balance_classifier=clf, balance_head="style,hair"))
    with pytest.raises(UserError, match="--balance-head"):
        TrainConfig(**base, balance_classifier=clf, balance_head=" , ").validate()
    assert TrainConfig.from_dict({**base, "balance_temperature": 1.0}).balance_head == "style"
