"""Helpers shared by the benchmark scripts: machine description and docs/benchmarks.md sections."""

from __future__ import annotations

import os
import platform
import re
import shlex
import sys
from pathlib import Path

import torch

BENCH_DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def machine_summary() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, CUDA {'yes' if torch.cuda.is_available() else 'no'}"
    )


def load_note(load_start: tuple[float, ...], load_end: tuple[float, ...]) -> str:
    """One sentence on the machine's load (os.getloadavg()) before and after a measurement."""
    cores = os.cpu_count() or 1
    busy = max(load_start[0], load_end[0]) > 0.75 * cores  # other jobs took CPU time
    loads = [", ".join(f"{v:.2f}" for v in load) for load in (load_start, load_end)]
    if busy:
        state = f"Other jobs shared the {cores}-core machine while this ran: the times are inflated, noisy."
    else:
        state = "The machine was otherwise quiet."
    return f"{state} Load average (1, 5, 15 min) at start: {loads[0]}; at end: {loads[1]}."


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section `## name` of docs/benchmarks.md with body."""
    BENCH_DOC.parent.mkdir(parents=True, exist_ok=True)
    text = (
        BENCH_DOC.read_text()
        if BENCH_DOC.exists()
        else "# Benchmarks\n\nAll numbers come from the commands shown next to them.\n"
    )
    section = f"## {name}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text)
    else:
        text = text.rstrip() + "\n\n" + section
    BENCH_DOC.write_text(text.rstrip() + "\n")


def report_header(module: str, argv: list[str] | None, note: str = "") -> str:
    """The command line (without --write), machine and note a benchmarks.md section starts with."""
    words = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--write"]
    note = f"{note}\n\n" if note else ""
    return f"Command: `python -m {module} {shlex.join(words)}`\n\nMachine: {machine_summary()}\n\n{note}"


def publish(name: str, body: str, write: bool) -> int:
    """Print a report; with write (the --write option) also make it `## name` of docs/benchmarks.md."""
    if write:
        write_section(name, body)
    print(body)
    return 0
