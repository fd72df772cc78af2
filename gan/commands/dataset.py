"""`gan dataset ACTION`: make training data sets.

Each action is one `_add_<action>(sub)` function that adds its sub-parser and sets
`_dataset_run` to the function running it; adding an action means writing one such function and
listing it in `_ACTIONS`.
"""

from __future__ import annotations

import argparse

NAME = "dataset"
HELP = "Make training data sets (folder or zip of images with dataset.json)."


def _add_convert(sub) -> None:
    from gan.data.dataset_tool import TRANSFORMS, config_help

    p = sub.add_parser(
        "convert",
        help="Convert a folder of arbitrary images into a training set.",
        description="Convert a folder (or zip) of images of any size and mode into a training set: "
        "square, power-of-two sized RGB PNGs plus dataset.json. Unreadable files are skipped and "
        "listed; the output appears only when complete.",
    )
    p.add_argument("--source", required=True, help=config_help("source"))
    p.add_argument("--dest", required=True, help=config_help("dest"))
    p.add_argument("--resolution", type=int, default=256, help=config_help("resolution") + " (default 256)")
    p.add_argument("--transform", choices=TRANSFORMS, default="center-crop", help=config_help("transform"))
    p.add_argument(
        "--aspect", type=_parse_aspect, default=4 / 3, help=config_help("aspect") + ", e.g. 4:3 (default)"
    )
    p.add_argument("--force", action="store_true", help=config_help("force"))
    p.add_argument("--labels-from-folders", action="store_true", help=config_help("labels_from_folders"))
    p.set_defaults(_dataset_run=_run_convert)


def _run_convert(args: argparse.Namespace) -> int:
    from gan.data.dataset_tool import ConvertConfig, convert_dataset

    config = ConvertConfig(
        source=args.source,
        dest=args.dest,
        resolution=args.resolution,
        transform=args.transform,
        aspect=args.aspect,
        force=args.force,
        labels_from_folders=args.labels_from_folders,
    )
    report = convert_dataset(config)
    print(report.summary())
    return 0


_ACTIONS = (_add_convert,)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dataset_action", required=True, metavar="ACTION")
    for add in _ACTIONS:
        add(sub)


def run(args: argparse.Namespace) -> int:
    return args._dataset_run(args)


def _parse_aspect(text: str) -> float:
    """'4:3' or '1.333' -> width / height."""
    try:
        if ":" in text:
            w, h = text.split(":", 1)
            value = float(w) / float(h)
        else:
            value = float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected W:H or a number, not {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text!r}")
    return value
