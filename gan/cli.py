"""`gan` command line: one sub-command per module in `gan.commands`.

Each command module defines `NAME`, `HELP`, `add_arguments(parser)` and `run(args) -> int`.
Errors the user can fix are raised as `gan.errors.UserError` and printed without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gan.errors import UserError

# Module names under gan.commands, in the order `gan --help` lists them.
COMMANDS = [
    "generate",
    "project",
    "video",
    "train",
    "metrics",
    "dataset",
    "directions",
    "blend",
    "convert",
    "info",
]


def _load_commands() -> list:
    modules = []
    for name in COMMANDS:
        try:
            modules.append(importlib.import_module(f"gan.commands.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"gan.commands.{name}":
                raise
    return modules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gan", description="StyleGAN2 / StyleGAN3 tools.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _load_commands():
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ops_cuda.allocator import keep_freed_memory  # imports torch: after --help

    keep_freed_memory()
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"gan {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gan {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
