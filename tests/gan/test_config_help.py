"""gan.config_help: command-line options generated from a dataclass config's fields."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import pytest

from gan.config_help import add_config_arguments, config_from_args, field_help, opt


@dataclass
class Settings:
    out: str = field(metadata={"help": "where to write"})
    count: int = field(default=3, metadata={"help": "how many"})
    scale: float | None = field(default=None, metadata={"help": "zoom"})
    mode: str = field(default="fast", metadata={"help": "speed"})
    force: bool = field(default=False, metadata={"help": "replace"})
    tags: tuple[str, ...] = field(default=("a", "b"), metadata={"help": "labels"})


def parser(**kwargs) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="t", exit_on_error=False)
    add_config_arguments(
        p,
        Settings,
        types={"tags": lambda t: tuple(t.split(","))},
        choices={"mode": ("fast", "slow")},
        **kwargs,
    )
    return p


def test_options_build_the_config_back():
    args = parser().parse_args(["--out", "x", "--count", "5", "--force", "--tags", "c,d"])
    config = config_from_args(Settings, args)
    assert config == Settings(out="x", count=5, force=True, tags=("c", "d")) and config.tags == ("c", "d")
    assert config_from_args(Settings, parser().parse_args(["--out", "y"])) == Settings(out="y")


def test_required_types_and_choices_are_checked(capsys):
    p = parser()
    with pytest.raises(SystemExit):
        p.parse_args(["--count", "2"])  # --out has no default
    assert "--out" in capsys.readouterr().err
    with pytest.raises(argparse.ArgumentError):
        p.parse_args(["--out", "x", "--count", "two"])
    with pytest.raises(argparse.ArgumentError):
        p.parse_args(["--out", "x", "--mode", "medium"])


def test_help_shows_field_help_and_defaults():
    text = parser(
        flags={"scale": "--zoom"}, shown={"scale": "auto"}, notes={"count": " of them"}
    ).format_help()
    assert "how many of them (default: 3)" in text
    assert "--zoom SCALE" in text and "zoom (default: auto)" in text
    assert "labels (default: a,b)" in text
    assert "replace\n" in text  # an off switch: no "(default: False)"
    assert "speed\n" in parser(shown={"mode": ""}).format_help()  # "" shows no default


def test_unset_is_none_tells_given_from_default():
    args = parser(unset_is_none=True).parse_args(["--out", "x", "--no-force"])
    assert args.count is None and args.force is False


def test_an_annotation_without_a_type_is_a_programming_error():
    with pytest.raises(TypeError, match="tags"):
        add_config_arguments(argparse.ArgumentParser(), Settings)


@dataclass
class Edits:
    moves: list[str] = field(default_factory=list, metadata={"help": "NAME=VALUE, repeatable"})
    sizes: list[int] = field(default_factory=list, metadata={"help": "sizes"})


def test_repeated_options_collect_every_value_in_order():
    p = argparse.ArgumentParser(prog="t", exit_on_error=False)
    add_config_arguments(p, Edits, repeated=("moves", "sizes"), types={"sizes": int})
    args = p.parse_args(["--moves", "a=1", "--sizes", "3", "--moves", "b=-2", "--sizes", "4"])
    assert config_from_args(Edits, args) == Edits(moves=["a=1", "b=-2"], sizes=[3, 4])
    assert config_from_args(Edits, p.parse_args([])) == Edits()
    assert p.parse_args([]).moves == []  # a fresh default, not the list an earlier parse appended to
    with pytest.raises(argparse.ArgumentError):
        p.parse_args(["--sizes", "x"])


@dataclass
class Job:
    src: str = opt(help="input file")
    level: int = opt(2, help="how hard")


def test_opt_fields_carry_their_help_and_no_default_means_required(capsys):
    assert field_help(Job, "src") == "input file" and Job(src="a").level == 2
    p = argparse.ArgumentParser(prog="t")
    add_config_arguments(p, Job)
    assert "how hard (default: 2)" in p.format_help()
    with pytest.raises(SystemExit):
        p.parse_args(["--level", "3"])
    assert "--src" in capsys.readouterr().err
