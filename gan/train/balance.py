"""Class balance of the generated images (optional training term): pushes the share of each class
of one classifier head in G's images towards that class's share in the training data.

Why: a GAN can settle on the wrong proportions of two well-separated modes. The toon model made
two thirds anime faces from data that is half anime, and the share did not move between 55 and
131 kimg: to move mass from one mode to the other, G must pass samples through in-between images
that D rejects, so the adversarial loss alone corrects the proportions only very slowly.

Per G step, with p_k(x) the classifier's probability of class k and share_k a running mean of
the batches' mean p_k (no gradient):

    loss = weight * sum_k (share_k - target_k) * mean_i p_k(G(z_i))

The loss is linear in the probabilities, so the noise of a small batch adds no pull of its own
(a squared error of the batch share would have one: its variance term is smallest when every
image sits on the class boundary). It vanishes once the shares match. Confident images barely
get a gradient (the softmax saturates); images near the class boundary get most of it, so the
boundary moves while D keeps the images realistic. Images are shifted by a random few pixels
before classification, as in `gan.edit.refine`.

The term acts on G; G_ema follows G's shares only with a lag (in the toon run G was at about
50% anime for several kimg while G_ema still made 62%). A shorter `--ema-kimg` and smaller
learning rates at the end let G settle and G_ema catch up.

The target shares come from the data set's `dataset.json` `attributes` (written by `gan dataset
toon`), whose class indices must follow the classifier head's class names. Several heads can be
balanced at once (`--balance-head style,glasses`): one term each, summed in the G loss.

The share is a mean probability, which equals the share of images of a class only when the
classifier is sure of each image (the toon styles). Where G draws ambiguous images (faint
glasses: mean probability 0.2 while 4-5% of the images are classified as wearing them) the mean
already looks right and the term does not pull; a temperature below 1 (`--balance-temperature`,
logits / T before the softmax) counts each image closer to its most likely class.
"""

from __future__ import annotations

import torch

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


class ClassBalance:
    """The balance term of the G loss (see the module docstring). net: a classifier network
    (input NCHW in [-1, 1] at net.config.resolution, output {head: logits}); target: the wanted
    share of each class of `head`."""

    def __init__(
        self,
        net: torch.nn.Module,
        head: str,
        classes: list[str],
        target,
        weight: float,
        seed: int,
        temperature: float = 1.0,
    ):
        self.net = net.eval().requires_grad_(False)
        self.temperature = float(temperature)
        self.head = head
        self.classes = list(classes)
        self.target = torch.as_tensor(target, dtype=torch.float32)
        self.weight = float(weight)
        self.share: torch.Tensor | None = None
        self.gen = torch.Generator().manual_seed(int(seed))

    @classmethod
    def from_files(
        cls,
        classifier_path: str,
        head: str,
        data_path: str,
        weight: float,
        device,
        seed: int,
        temperature: float = 1.0,
    ):
        """The term for `gan train`: the classifier file's head, the data set's label shares."""
        clf = load_classifier(classifier_path, device=str(device))
        if head not in clf.heads:
            raise UserError(
                f"the balance classifier {classifier_path} has no head '{head}'; "
                f"its heads are {', '.join(clf.heads)}"
            )
        classes = clf.heads[head]
        target = label_shares(data_path, head, classes)
        return cls(clf.net, head, classes, target, weight, seed, temperature)

    def loss(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, batch share per class) for G's images [N, 3, H, W] in [-1, 1]."""
        x = to_input(random_shift(images, SHIFT, self.gen), self.net.config.resolution)
        probs = (self.net(x)[self.head] / self.temperature).softmax(dim=1)
        batch_share = probs.mean(dim=0)
        rate = min(1.0, images.shape[0] / SHARE_IMAGES)
        detached = batch_share.detach()
        self.share = detached if self.share is None else self.share.lerp(detached, rate)
        excess = self.share - self.target.to(detached.device)
        loss = self.weight * (excess * batch_share).sum()
        return loss, detached
