"""Everything checked and built before the first training step (and all of `--dry-run`).

`prepare(config)` opens the data set (reading every image header), finds and loads the model to
resume from and checks it fits, checks the output folder is writable, resolves the options and
builds the networks once, so a bad option fails here with a clear message instead of hours later.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import torch

from gan.data.dataset import ImageDataset
from gan.errors import ModelLoadError, UserError
from gan.train import snapshot as snap
from gan.train.config import DataInfo, ResolvedConfig, ResumeNets, TrainConfig, resolve_config


@dataclass
class ResumeSource:
    """Where training starts from. mode: 'continue' (weights + training state, counters go on)
    or 'finetune' (weights only)."""

    mode: str
    model_path: str
    state_path: str | None  # the training state ('continue' only)
    run_dir: str | None  # continue in place in this run folder (resume given as a run folder)
    model: object  # gan.model_io.LoadedModel


@dataclass
class Prepared:
    resolved: ResolvedConfig
    dataset: ImageDataset
    resume: ResumeSource | None


def open_dataset(config: TrainConfig) -> tuple[ImageDataset, DataInfo]:
    dataset = ImageDataset(
        config.data, use_labels=config.cond, xflip=config.mirror, max_size=config.max_size, seed=config.seed
    )
    info = DataInfo(
        path=os.path.abspath(config.data),
        name=dataset.name,
        resolution=dataset.resolution,
        channels=dataset.num_channels,
        label_dim=dataset.label_dim,
        size=len(dataset),
    )
    if info.resolution < 8:
        raise UserError(f"the images in {config.data} are {info.resolution} px; training needs at least 8 px")
    if info.channels not in (1, 3):
        raise UserError(
            f"the images in {config.data} have {info.channels} channels; training needs greyscale or RGB "
            "(convert with `gan dataset convert`)"
        )
    return dataset, info


def find_resume(config: TrainConfig) -> ResumeSource | None:
    """Locate and load the model to resume from (see TrainConfig.resume)."""
    from gan.model_io import load_model

    if config.resume is None:
        return None
    path = config.resume
    run_dir = None
    if os.path.isdir(path):
        if not snap.is_run_dir(path):
            raise UserError(f"--resume {path} is a folder but not a training run (no training_options.json)")
        latest = snap.read_latest(path)
        model_path, state_path = latest.paths(path)
        run_dir = path
    else:
        model_path, state_path = path, None
    try:
        model = load_model(model_path, device="cpu", training_nets=True)
    except ModelLoadError as exc:
        raise UserError(f"cannot resume from {model_path}: {exc}") from None
    if state_path is None:
        training = model.metadata.get("training") if isinstance(model.metadata, dict) else None
        state_name = training.get("state_file") if isinstance(training, dict) else None
        if isinstance(state_name, str) and state_name:
            candidate = os.path.join(os.path.dirname(os.path.abspath(model_path)), state_name)
            state_path = candidate if os.path.exists(candidate) else None
    ours = isinstance(model.metadata, dict) and isinstance(model.metadata.get("training"), dict)
    if config.finetune or (not ours and run_dir is None):
        # Any other model (an official pickle, a converted or generator-only file) is a starting point.
        return ResumeSource("finetune", model_path, None, None, model)
    if state_path is None or not os.path.exists(state_path) or model.G_train is None or model.D is None:
        raise UserError(
            f"the training state of {model_path} is missing (only the newest snapshots keep one), so "
            "training cannot continue where it stopped; add --finetune to start from its weights instead"
        )
    return ResumeSource("continue", model_path, state_path, run_dir, model)


def prepare(config: TrainConfig, world_size: int = 1, build: bool = True) -> Prepared:
    """Validate everything; raise UserError on the first problem."""
    config.validate()
    dataset, info = open_dataset(config)
    resume = find_resume(config)
    nets = None
    if resume is not None:
        m = resume.model
        nets = ResumeNets(m.arch, dict(m.g_kwargs), m.d_kwargs)
        # Any model without our training state is fine-tuned; a continued run stays what it began
        # as, so a fine-tune keeps its defaults (ADA speed, no EMA ramp-up, no blur) when resumed.
        began_as = training_metadata(resume).get("config")
        finetune = resume.mode == "finetune" or (
            isinstance(began_as, dict) and bool(began_as.get("finetune"))
        )
        config = dataclasses.replace(config, finetune=finetune)
    resolved = resolve_config(config, info, world_size=world_size, resume=nets)
    snap.check_writable(resume.run_dir if resume is not None and resume.run_dir else config.outdir)
    if build:
        build_networks(resolved, torch.device("cpu"))  # fails here if the settings do not fit together
    return Prepared(resolved, dataset, resume)


def training_metadata(resume: ResumeSource | None) -> dict:
    """The "training" entry of the resumed model's metadata ({} when it has none)."""
    meta = getattr(getattr(resume, "model", None), "metadata", None)
    training = meta.get("training") if isinstance(meta, dict) else None
    return training if isinstance(training, dict) else {}


def build_networks(resolved: ResolvedConfig, device: torch.device):
    """Fresh G, D (training mode, no grads) on device, from the resolved kwargs."""
    from gan.networks import build_discriminator, build_generator

    try:
        G = build_generator(resolved.config.cfg, resolved.g_kwargs)
        D = build_discriminator(resolved.d_kwargs)
    except (ValueError, TypeError, AssertionError) as exc:
        raise UserError(f"cannot build the networks from these settings: {exc}") from None
    return G.train().requires_grad_(False).to(device), D.train().requires_grad_(False).to(device)
