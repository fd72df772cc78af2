"""Class balance of the generated images (optional training term): pushes the share of each class
of one or more classifier heads in G's images towards that class's share in the training data.

Why: a GAN can settle on the wrong proportions of two well-separated modes. The toon model made
two thirds anime faces from data that is half anime, and the share did not move between 55 and
131 kimg: to move mass from one mode to the other, G must pass samples through in-between images
that D rejects, so the adversarial loss alone corrects the proportions only very slowly.

Per G step and balanced head, with p_k(x) the classifier's probability of class k and share_k a
running mean of the batches' share of images classified as k (argmax; no gradient):

    loss = weight * sum_k (share_k - target_k) * mean_i p_k(G(z_i))

The loss is linear in the probabilities, so the noise of a small batch adds no pull of its own
(a squared error of the batch share would have one: its variance term is smallest when every
image sits on the class boundary). It vanishes once the shares match. Confident images barely
get a gradient (the softmax saturates); images near the class boundary get most of it, so the
boundary moves while D keeps the images realistic. Images are shifted by a random few pixels
before classification, as in `gan.edit.refine`.

The share counts images by their most likely class rather than averaging probabilities: the two
agree for confident classes (the toon styles), but where G draws ambiguous images (the default
model's faint glasses: a mean probability of 0.22, the data's share 0.30, while only 8% of the
images are classified as wearing glasses) a mean probability would report the share as nearly
right and the term would not pull.

The running share lags G by about SHARE_IMAGES images. A head whose class flips with small
changes of the image (glasses) moves within a few G steps at the styles' weight of 8, faster than
that lag, and swings past its target (glasses 8% -> 100% -> 0% within 30 steps at batch 8): give
such a head a smaller weight (`--balance-head style,glasses:1`).

The term acts on G; G_ema follows G's shares only with a lag (in the toon run G was at about
50% anime for several kimg while G_ema still made 62%). A shorter `--ema-kimg` and smaller
learning rates at the end let G settle and G_ema catch up.

The target shares come from the data set's `dataset.json` `attributes` (written by `gan dataset
toon`), whose class indices must follow the classifier head's class names.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gan.data.dataset import LABELS_FILE, FileSource, read_dataset_json
from gan.edit.classifier import load_classifier, random_shift, to_input
from gan.errors import UserError

SHIFT = 2  # pixels of random shift before classifying (the classifier's training augmentation)
SHARE_IMAGES = 200  # the running share averages over about this many recent images


def label_shares(data_path: str, head: str, classes: list[str]) -> torch.Tensor:
    """Share of each class of attribute `head` over the images of a `gan dataset toon` data set."""
    files = FileSource(data_path)
    try:
        meta = read_dataset_json(files)
    finally:
        files.close()
    if meta is None:
        raise UserError(f"{data_path} has no {LABELS_FILE}, so class balance has no target shares")
    attributes = [attrs for _name, attrs in meta.get("attributes") or []]
    if not attributes or head not in attributes[0]:
        raise UserError(
            f"{data_path}: its {LABELS_FILE} has no '{head}' attribute per image; class balance needs "
            "a data set made by `gan dataset toon`"
        )
    names = (meta.get("attribute_classes") or {}).get(head)
    if names is not None and list(names) != list(classes):
        raise UserError(
            f"the data set's '{head}' classes {list(names)} differ from the classifier's {list(classes)}"
        )
    counts = torch.zeros(len(classes), dtype=torch.float64)
    for attrs in attributes:
        value = int(attrs[head])
        if not 0 <= value < len(classes):
            raise UserError(f"{data_path}: '{head}' value {value} is not a class of the classifier")
        counts[value] += 1
    return (counts / counts.sum()).float()


@dataclass
class BalancedHead:
    """One classifier head whose class shares are balanced."""

    name: str
    classes: list[str]
    target: torch.Tensor  # wanted share of each class
    weight: float
    share: torch.Tensor | None = None  # running share of G's images classified as each class


class ClassBalance:
    """The balance term of the G loss (see the module docstring). net: a classifier network
    (input NCHW in [-1, 1] at net.config.resolution, output {head: logits}), run once per G step
    for all heads."""

    def __init__(self, net: torch.nn.Module, heads: list[BalancedHead], seed: int):
        self.net = net.eval().requires_grad_(False)
        self.heads = heads
        self.gen = torch.Generator().manual_seed(int(seed))

    @classmethod
    def from_files(
        cls, classifier_path: str, heads: list[tuple[str, float]], data_path: str, device, seed: int
    ) -> ClassBalance:
        """The term for `gan train`: heads are (name, weight); the classifier file's class names,
        the data set's label shares."""
        clf = load_classifier(classifier_path, device=str(device))
        balanced = []
        for name, weight in heads:
            if name not in clf.heads:
                raise UserError(
                    f"the balance classifier {classifier_path} has no head '{name}'; "
                    f"its heads are {', '.join(clf.heads)}"
                )
            classes = clf.heads[name]
            balanced.append(BalancedHead(name, classes, label_shares(data_path, name, classes), weight))
        return cls(clf.net, balanced, seed)

    def loss(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(loss, {head: this batch's share per class}) for G's images [N, 3, H, W] in [-1, 1]."""
        logits = self.net(to_input(random_shift(images, SHIFT, self.gen), self.net.config.resolution))
        rate = min(1.0, images.shape[0] / SHARE_IMAGES)
        loss = torch.zeros([], device=images.device)
        shares = {}
        for head in self.heads:
            probs = logits[head.name].softmax(dim=1)
            batch_share = F.one_hot(probs.detach().argmax(dim=1), len(head.classes)).float().mean(dim=0)
            head.share = batch_share if head.share is None else head.share.lerp(batch_share, rate)
            excess = head.share - head.target.to(batch_share.device)
            loss = loss + head.weight * (excess * probs.mean(dim=0)).sum()
            shares[head.name] = batch_share
        return loss, shares
