"""A small multi-head image classifier for toon faces: style domain, hair colour, glasses.

Used to label generated samples (for attribute directions) and to measure edits ("after the
anime-ify slider, how many images are classified anime?").

    clf = load_classifier("resources/classifier/toon_classifier.safetensors")
    probs = clf.classify(images)     # uint8 NHWC (numpy/torch) or float NCHW in [-1, 1]
    probs["style"]                   # float32 [N, 2]: P(photo), P(anime)

Any input size works: images are resized (area filter) to the classifier's resolution, so the
same classifier serves 64 and 128 px models.

File format: one `.safetensors` file with the network weights and, in its string metadata,
`format` = "stylegan-explorer-classifier", `format_version` = "1" and `config` = the JSON of
ClassifierConfig (heads and their class names, resolution, channels) plus `training` (how it
was trained, held-out accuracies). Nothing is pickled; loading runs no code from the file.

Training (the command recorded in resources/classifier/README.md):

    python -m gan.edit.classifier --train toon_train.zip --val toon_val.zip --out clf.safetensors

where the data sets come from `gan dataset toon` (their dataset.json `attributes` give the labels).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import safetensors
import safetensors.torch
import torch
import torch.nn.functional as F

from gan.commands.stage_bars import StageBars
from gan.config_help import add_config_arguments, config_from_args
from gan.errors import Cancelled, UserError
from gan.io.files import atomic_write_bytes
from gan.progress import Progress

FORMAT_NAME = "stylegan-explorer-classifier"
FORMAT_VERSION = 1


def default_heads() -> dict[str, list[str]]:
    from gan.data.toon import ATTRIBUTE_CLASSES

    return {name: list(ATTRIBUTE_CLASSES[name]) for name in ("style", "hair_colour", "glasses")}


@dataclass
class ClassifierConfig:
    heads: dict[str, list[str]] = field(
        default_factory=default_heads,
        metadata={
            "help": "one softmax head per attribute: {attribute: [class names]} (toon attribute names)"
        },
    )
    resolution: int = field(default=64, metadata={"help": "input size; images are resized to it"})
    channels: tuple[int, ...] = field(
        default=(16, 32, 64, 96), metadata={"help": "channels of the conv blocks (each halves the size)"}
    )

    def validate(self) -> None:
        if not self.heads or any(len(c) < 2 for c in self.heads.values()):
            raise ValueError("every classifier head needs at least two classes")
        if self.resolution < 8 or self.resolution >> len(self.channels) < 1:
            raise ValueError(f"resolution {self.resolution} is too small for {len(self.channels)} blocks")

    def to_json(self) -> dict:
        return {"heads": self.heads, "resolution": self.resolution, "channels": list(self.channels)}

    @classmethod
    def from_json(cls, data: dict) -> ClassifierConfig:
        heads = {str(k): [str(c) for c in v] for k, v in dict(data["heads"]).items()}
        config = cls(
            heads=heads, resolution=int(data["resolution"]), channels=tuple(int(c) for c in data["channels"])
        )
        config.validate()
        return config


class ClassifierNet(torch.nn.Module):
    """Conv blocks (conv-BN-ReLU twice, then 2x average pooling), global average pool, one linear
    head per attribute. Input NCHW float in [-1, 1] at config.resolution; output {head: logits}."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        config.validate()
        self.config = config
        layers: list[torch.nn.Module] = []
        cin = 3
        for cout in config.channels:
            for _ in range(2):
                layers += [torch.nn.Conv2d(cin, cout, 3, padding=1, bias=False), torch.nn.BatchNorm2d(cout)]
                layers.append(torch.nn.ReLU(inplace=True))
                cin = cout
            layers.append(torch.nn.AvgPool2d(2))
        self.features = torch.nn.Sequential(*layers)
        self.heads = torch.nn.ModuleDict(
            {name: torch.nn.Linear(cin, len(c)) for name, c in config.heads.items()}
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.features(x).mean(dim=(2, 3))
        return {name: head(f) for name, head in self.heads.items()}


def to_input(images, resolution: int) -> torch.Tensor:
    """uint8 NHWC (numpy or torch) or float NCHW in [-1, 1] -> float32 NCHW in [-1, 1] at resolution."""
    x = torch.as_tensor(np.asarray(images)) if isinstance(images, np.ndarray) else images
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"images must be a numpy array or a torch tensor, not {type(images).__name__}")
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"images must be NHWC uint8 or NCHW float, got shape {list(x.shape)}")
    if x.dtype == torch.uint8:
        if x.shape[-1] != 3:
            raise ValueError(f"uint8 images must be NHWC with 3 channels, got shape {list(x.shape)}")
        x = x.permute(0, 3, 1, 2).to(torch.float32) / 127.5 - 1
    else:
        if x.shape[1] != 3:
            raise ValueError(f"float images must be NCHW with 3 channels, got shape {list(x.shape)}")
        x = x.to(torch.float32).clamp(-1, 1)
    if x.shape[2] != resolution or x.shape[3] != resolution:
        x = F.interpolate(
            x, size=(resolution, resolution), mode="area" if x.shape[2] > resolution else "bilinear"
        )
    return x.contiguous()


def random_shift(images: torch.Tensor, shift: int, gen: torch.Generator) -> torch.Tensor:
    """images [N, C, H, W] moved by one random (dx, dy) in [-shift, shift], edges repeated: the
    augmentation the classifier was trained with, so a loss through it cannot lean on a few
    pixels at fixed places."""
    if shift == 0:
        return images
    dx, dy = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=gen))
    padded = F.pad(images, [shift] * 4, mode="replicate")
    h, w = images.shape[2:]
    return padded[:, :, shift + dy : shift + dy + h, shift + dx : shift + dx + w]


class Classifier:
    """A trained ClassifierNet with its config, ready to classify images."""

    def __init__(self, net: ClassifierNet, training: dict | None = None, device: str = "cpu"):
        self.net = net.eval().requires_grad_(False).to(device)
        self.config = net.config
        self.training = training or {}
        self.device = device

    @property
    def heads(self) -> dict[str, list[str]]:
        return self.config.heads

    @torch.no_grad()
    def classify(self, images, batch_size: int = 256) -> dict[str, np.ndarray]:
        """Class probabilities {head: float32 [N, num_classes]} of a batch of images."""
        x = to_input(images, self.config.resolution)
        out: dict[str, list[np.ndarray]] = {name: [] for name in self.heads}
        for i in range(0, x.shape[0], batch_size):
            logits = self.net(x[i : i + batch_size].to(self.device))
            for name, value in logits.items():
                out[name].append(torch.softmax(value, dim=1).cpu().numpy())
        return {
            name: np.concatenate(v) if v else np.zeros((0, len(self.heads[name])), np.float32)
            for name, v in out.items()
        }

    def predict(self, images) -> dict[str, np.ndarray]:
        """Most likely class index per head, {head: int64 [N]}."""
        return {name: p.argmax(axis=1) for name, p in self.classify(images).items()}


# --- files -----------------------------------------------------------------------------------


def save_classifier(
    path: str | os.PathLike, clf: Classifier | ClassifierNet, training: dict | None = None
) -> None:
    net = clf.net if isinstance(clf, Classifier) else clf
    if training is None and isinstance(clf, Classifier):
        training = clf.training
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in net.state_dict().items()}
    header = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "config": json.dumps(net.config.to_json(), sort_keys=True),
        "training": json.dumps(training or {}, sort_keys=True),
    }
    atomic_write_bytes(path, safetensors.torch.save(tensors, metadata=header))


def load_classifier(path: str | os.PathLike, device: str = "cpu") -> Classifier:
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise UserError(
            f"classifier file {source} does not exist; check the path (the shipped one is "
            "resources/classifier/toon_classifier.safetensors)"
        )
    try:
        with safetensors.safe_open(source, framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            if header.get("format") != FORMAT_NAME:
                raise UserError(
                    f"{source} is not a stylegan-explorer classifier file (no '{FORMAT_NAME}' header)"
                )
            if header.get("format_version") != str(FORMAT_VERSION):
                raise UserError(
                    f"{source} has classifier format version {header.get('format_version')!r}; "
                    f"this program reads version {FORMAT_VERSION}"
                )
            config = ClassifierConfig.from_json(json.loads(header["config"]))
            training = json.loads(header.get("training", "{}"))
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (safetensors.SafetensorError, OSError) as exc:
        raise UserError(f"{source} is not a valid safetensors file or is truncated ({exc})") from exc
    except (KeyError, ValueError, TypeError) as exc:
        raise UserError(f"{source} has a damaged classifier header ({exc}); re-create the file") from exc
    net = ClassifierNet(config)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UserError(f"{source}: the weights do not fit the classifier config ({exc})") from exc
    return Classifier(net, training, device)


# --- training --------------------------------------------------------------------------------


def load_toon_arrays(
    path: str | os.PathLike, heads: dict[str, list[str]]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Images (uint8 NHWC) and per-head labels (int64) of a data set written by `gan dataset toon`."""
    from gan.data.dataset import LABELS_FILE, FileSource, ImageDataset, read_dataset_json

    dataset = ImageDataset(path)
    files = FileSource(os.fspath(path))
    try:
        meta = read_dataset_json(files)
    finally:
        files.close()
    if meta is None:
        raise UserError(f"{path} has no {LABELS_FILE}; make it with `gan dataset toon`")
    attributes = dict(meta.get("attributes") or [])
    if not attributes:
        raise UserError(
            f"{path}: its {LABELS_FILE} has no 'attributes'; make the data set with `gan dataset toon`"
        )
    names = [dataset.image_name(i) for i in range(len(dataset))]
    unlisted = [n for n in names if n not in attributes]
    if unlisted:
        raise UserError(f"{path}: {len(unlisted)} image(s) have no attributes, e.g. {unlisted[0]}")
    missing = [h for h in heads if h not in attributes[names[0]]]
    if missing:
        raise UserError(f"{path}: the attributes have no {', '.join(missing)}")
    try:
        images = np.stack([dataset[i][0] for i in range(len(dataset))]).transpose(0, 2, 3, 1)
    finally:
        dataset.close()
    labels = {h: np.array([int(attributes[n][h]) for n in names], dtype=np.int64) for h in heads}
    return np.ascontiguousarray(images), labels


@dataclass
class TrainOptions:
    epochs: int = field(default=12, metadata={"help": "passes over the training images"})
    batch_size: int = field(default=64, metadata={"help": "images per step"})
    lr: float = field(default=2e-3, metadata={"help": "Adam learning rate (cosine decay to 0)"})
    seed: int = field(default=0, metadata={"help": "seed of the initial weights, order and augmentation"})
    augment: bool = field(
        default=True,
        metadata={
            "help": "x-flips, small shifts, blur and noise, so GAN samples (softer, noisier) classify well"
        },
    )


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    # Shift by up to 1/16 of the size (replicate padding), like the pose jitter of a GAN's output.
    pad = max(1, x.shape[2] // 16)
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dx, dy = torch.randint(0, 2 * pad + 1, (2,), generator=gen).tolist()
    x = padded[:, :, dy : dy + x.shape[2], dx : dx + x.shape[3]]
    # Blur half of the batch a little: generated images are softer than the drawings.
    blur = torch.rand(n, generator=gen) < 0.5
    k = torch.tensor([1.0, 2.0, 1.0]) / 4
    kernel = (k[:, None] * k[None, :]).expand(3, 1, 3, 3)
    blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=3)
    x = torch.where(blur[:, None, None, None], blurred, x)
    noise = torch.randn(x.shape, generator=gen) * torch.rand(n, 1, 1, 1, generator=gen) * 0.08
    return (x + noise).clamp(-1, 1)


def accuracy(clf: Classifier, images: np.ndarray, labels: dict[str, np.ndarray]) -> dict[str, float]:
    predicted = clf.predict(images)
    return {h: float((predicted[h] == labels[h]).mean()) for h in labels}


def train_classifier(
    images: np.ndarray,
    labels: dict[str, np.ndarray],
    config: ClassifierConfig | None = None,
    options: TrainOptions | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> Classifier:
    """Train a classifier on uint8 NHWC images with integer labels per head (see load_toon_arrays).
    progress(step, total, "training classifier") per step; on_epoch(epoch, mean loss)."""
    config = config or ClassifierConfig()
    options = options or TrainOptions()
    config.validate()
    for head, classes in config.heads.items():
        if head not in labels:
            raise UserError(f"no labels for the classifier head {head!r}")
        y = labels[head]
        if len(y) != len(images) or y.min() < 0 or y.max() >= len(classes):
            raise UserError(f"labels of {head!r} must be {len(images)} classes from 0 to {len(classes) - 1}")
    torch.manual_seed(options.seed)
    gen = torch.Generator().manual_seed(options.seed)
    net = ClassifierNet(config)
    x_all = to_input(images, config.resolution)
    y_all = {h: torch.from_numpy(labels[h]) for h in config.heads}
    steps_per_epoch = math.ceil(len(images) / options.batch_size)
    total = steps_per_epoch * options.epochs
    opt = torch.optim.Adam(net.parameters(), lr=options.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / total, 1)))
    )
    for epoch in range(options.epochs):
        net.train()
        order = torch.randperm(len(images), generator=gen)
        running = 0.0
        for i in range(steps_per_epoch):
            if should_stop is not None and should_stop():
                raise Cancelled("classifier training was stopped")
            idx = order[i * options.batch_size : (i + 1) * options.batch_size]
            x = x_all[idx]
            if options.augment:
                x = _augment(x, gen)
            logits = net(x)
            loss = sum(F.cross_entropy(logits[h], y_all[h][idx]) for h in config.heads)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += loss.item()
            if progress is not None:
                progress(epoch * steps_per_epoch + i + 1, total, "training classifier")
        if on_epoch is not None:
            on_epoch(epoch + 1, running / steps_per_epoch)
    return Classifier(net)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gan.edit.classifier", description="Train the toon-face classifier on toon data sets."
    )
    parser.add_argument("--train", required=True, help="training data set from `gan dataset toon`")
    parser.add_argument("--val", required=True, help="held-out data set (other --seed) for the accuracies")
    parser.add_argument("--out", required=True, help="output .safetensors file")
    parser.add_argument("--resolution", type=int, default=64, help="classifier input size (default 64)")
    add_config_arguments(parser, TrainOptions)
    args = parser.parse_args(argv)
    try:
        config = ClassifierConfig(resolution=args.resolution)
        options = config_from_args(TrainOptions, args)
        images, labels = load_toon_arrays(args.train, config.heads)
        val_images, val_labels = load_toon_arrays(args.val, config.heads)
        start = time.perf_counter()
        bars = StageBars(unit="step")
        try:
            clf = train_classifier(images, labels, config, options, progress=bars)
        finally:
            bars.close()
        seconds = time.perf_counter() - start
        acc = accuracy(clf, val_images, val_labels)
        clf.training = {
            "command": "python -m gan.edit.classifier " + " ".join(sys.argv[1:] if argv is None else argv),
            "train_images": len(images),
            "val_images": len(val_images),
            "val_accuracy": {k: round(v, 4) for k, v in acc.items()},
            "seconds": round(seconds, 1),
            "options": asdict(options),
        }
        save_classifier(args.out, clf)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"trained on {len(images)} images in {seconds:.0f} s; held-out accuracy on {len(val_images)} images:"
    )
    for head, value in acc.items():
        print(f"  {head}: {value:.4f}")
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
