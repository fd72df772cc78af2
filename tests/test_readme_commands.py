"""README.md's commands must run as written on a fresh clone (scripts/check_readme_commands.py
runs them all; this is its cheap half): each `gan` command parses with the CLI's own parser, each
`python -m` module and `scripts/` file exists, and no command depends on a path of one machine."""

from __future__ import annotations

import importlib.util
import shlex
import sys
from pathlib import Path

import pytest

from gan.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def _checker():
    spec = importlib.util.spec_from_file_location(
        "check_readme_commands", ROOT / "scripts" / "check_readme_commands.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


CHECKER = _checker()
COMMANDS = CHECKER.readme_commands((ROOT / "README.md").read_text())


def _argv(text: str) -> list[str]:
    words = shlex.split(text)
    while words and "=" in words[0] and not words[0].startswith("-"):
        words.pop(0)  # environment prefix such as QT_QPA_PLATFORM=xcb
    return words


def test_the_readme_has_commands_of_every_kind():
    starts = {_argv(c.text)[0] for c in COMMANDS}
    assert {"gan", "python", "make", "xvfb-run"} <= starts, starts
    assert len(COMMANDS) > 30


@pytest.mark.parametrize(
    "command", [c for c in COMMANDS if c.text.startswith("gan ")], ids=lambda c: f"line{c.line}"
)
def test_gan_command_parses(command, capsys):
    try:
        build_parser().parse_args(_argv(command.text)[1:])
    except SystemExit as exc:
        pytest.fail(
            f"README line {command.line}: `{command.text}` does not parse ({exc}): {capsys.readouterr().err}"
        )


def test_modules_and_scripts_exist():
    for command in COMMANDS:
        words = _argv(command.text)
        for i, word in enumerate(words):
            if word == "-m" and i > 0 and words[i - 1].endswith("python"):
                assert importlib.util.find_spec(words[i + 1]), (
                    f"line {command.line}: no module {words[i + 1]}"
                )
            if word.startswith("scripts/"):
                assert (ROOT / word).is_file(), f"line {command.line}: no file {word}"


def test_no_command_uses_an_absolute_path():
    for command in COMMANDS:
        for word in _argv(command.text):
            one_machine = word.startswith("/") or (word.startswith("~") and word not in CHECKER.STANDIN_NAMES)
            assert not one_machine, f"README line {command.line}: `{word}` exists on one machine only"


def test_block_continuations_and_comments():
    text = "```bash\ngan info a.pkl   # what it is\ngan convert a.pkl \\\n    b.safetensors\n```\n"
    text += "and inline `gan generate --model b.safetensors --seeds 0` but not `gan info` or `--seeds`\n"
    found = [(c.line, c.text) for c in CHECKER.readme_commands(text)]
    assert found == [
        (2, "gan info a.pkl"),
        (3, "gan convert a.pkl b.safetensors"),
        (6, "gan generate --model b.safetensors --seeds 0"),
    ]
