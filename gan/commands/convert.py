"""`gan convert`: turn a model file (e.g. an official NVIDIA .pkl) into our .safetensors format."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gan.errors import UserError

NAME = "convert"
HELP = "Convert an official StyleGAN2-ADA / StyleGAN3 .pkl (or one of our models) to .safetensors."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="IN", help="model to read (.pkl or .safetensors)")
    p.add_argument("output", metavar="OUT", help="file to write (must end in .safetensors)")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    p.add_argument(
        "--no-training-nets",
        action="store_true",
        help="keep only the generator to render with (G_ema); drop D and the non-EMA G",
    )


def _check_output(src: Path, dst: Path, force: bool) -> None:
    if dst.suffix != ".safetensors":
        raise UserError(f"OUT must end in .safetensors, got {dst.name!r}")
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise UserError("IN and OUT are the same file; choose another OUT")
    if dst.is_dir():
        raise UserError(f"OUT {dst} is a directory")
    if dst.exists() and not force:
        raise UserError(f"OUT {dst} already exists; pass --force to overwrite it")
    parent = dst.parent
    if not parent.is_dir():
        raise UserError(f"the directory of OUT ({parent}) does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"the directory of OUT ({parent}) is not writable")


def run(args: argparse.Namespace) -> int:
    from gan.io.files import write_error
    from gan.model_io import load_model, save_model  # heavy import; keep `gan --help` fast

    src, dst = Path(args.input), Path(args.output)
    _check_output(src, dst, args.force)
    model = load_model(src, training_nets=not args.no_training_nets)
    metadata = dict(model.metadata)
    metadata["converted_from"] = {"file": src.name, "sha256": model.sha256}
    try:
        save_model(dst, model.G, D=model.D, G_train=model.G_train, arch=model.arch, metadata=metadata)
    except OSError as exc:
        raise write_error(dst, exc) from None
    print(f"wrote {dst} ({model.arch}, networks: {', '.join(model.networks)})", file=sys.stderr)
    return 0
