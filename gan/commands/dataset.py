"""`gan dataset ACTION`: make training data sets.

Each action is one `_add_<action>(sub)` function that adds its sub-parser and sets
`_dataset_run` to the function running it; adding an action means writing one such function and
listing it in `_ACTIONS`.
"""

from __future__ import annotations

import argparse

from gan.commands.stage_bars import StageBars
from gan.config_help import add_config_arguments, config_from_args

NAME = "dataset"
HELP = "Make training data sets (folder or zip of images with dataset.json)."


def _add_convert(sub) -> None:
    from gan.data.dataset_tool import TRANSFORMS, ConvertConfig

    p = sub.add_parser(
        "convert",
        help="Convert a folder of arbitrary images into a training set.",
        description="Convert a folder (or zip) of images of any size and mode into a training set: "
        "square, power-of-two sized RGB PNGs plus dataset.json. Unreadable files are skipped and "
        "listed; the output appears only when complete.",
    )
    add_config_arguments(
        p,
        ConvertConfig,
        choices={"transform": TRANSFORMS},
        types={"aspect": _parse_aspect},
        notes={"aspect": ", as W:H or a number"},
        shown={"aspect": "4:3"},
    )
    p.set_defaults(_dataset_run=_run_convert)


def _run_convert(args: argparse.Namespace) -> int:
    from gan.data.dataset_tool import ConvertConfig, convert_dataset

    return _make_and_report(convert_dataset, config_from_args(ConvertConfig, args))


def _add_toon(sub) -> None:
    from gan.data.toon import ToonConfig

    p = sub.add_parser(
        "toon",
        help="Draw the procedural toon-faces data set (photo and anime styles).",
        description="Draw procedural toon faces (random identity, pose and style) into a training set "
        "with the style domain as class label (0 photo, 1 anime) and identity attributes in dataset.json. "
        "Deterministic per --seed; the output appears only when complete.",
    )
    add_config_arguments(p, ToonConfig, types={"styles": _parse_styles})
    p.set_defaults(_dataset_run=_run_toon)


def _run_toon(args: argparse.Namespace) -> int:
    from gan.data.toon import ToonConfig, make_toon_dataset

    return _make_and_report(make_toon_dataset, config_from_args(ToonConfig, args))


def _make_and_report(make, config) -> int:
    """make(config, progress=...) with progress on the terminal, then its report's summary."""
    bars = StageBars()
    try:
        report = make(config, progress=bars)
    finally:
        bars.close()
    print(report.summary())
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
