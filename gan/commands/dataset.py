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
    from gan.config_help import config_from_args
    from gan.data.dataset_tool import ConvertConfig, convert_dataset

    report = convert_dataset(config_from_args(ConvertConfig, args))
    print(report.summary())
    return 0


def _add_toon(sub) -> None:
    from gan.data.toon import ToonConfig
    from gan.data.toon import config_help as toon_help

    p = sub.add_parser(
        "toon",
        help="Draw the procedural toon-faces data set (photo and anime styles).",
        description="Draw procedural toon faces (random identity, pose and style) into a training set "
        "with the style domain as class label (0 photo, 1 anime) and identity attributes in dataset.json. "
        "Deterministic per --seed; the output appears only when complete.",
    )
    p.add_argument("--out", required=True, help=toon_help("out"))
    default = " (default %(default)s)"
    p.add_argument("--count", type=int, default=ToonConfig.count, help=toon_help("count") + default)
    res_help = toon_help("resolution") + default
    p.add_argument("--resolution", type=int, default=ToonConfig.resolution, help=res_help)
    p.add_argument("--seed", type=int, default=0, help=toon_help("seed") + " (default 0)")
    styles_help = toon_help("styles") + " (default photo,anime)"
    p.add_argument("--styles", type=_parse_styles, default=ToonConfig.styles, help=styles_help)
    p.add_argument("--supersample", type=int, default=None, help=toon_help("supersample"))
    p.add_argument("--workers", type=int, default=1, help=toon_help("workers") + " (default 1)")
    p.add_argument("--force", action="store_true", help=toon_help("force"))
    p.set_defaults(_dataset_run=_run_toon)


def _run_toon(args: argparse.Namespace) -> int:
    from gan.config_help import config_from_args
    from gan.data.toon import ToonConfig, make_toon_dataset

    print(make_toon_dataset(config_from_args(ToonConfig, args)).summary())
    return 0


def _parse_styles(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


_ACTIONS = (_add_convert, _add_toon)


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
