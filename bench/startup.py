"""Launch time of the explorer: from starting the process to the first generated image on screen.

Runs the app with `--screenshot` (offscreen Qt) several times and reads the moment it prints
"first image shown" on stderr; also reports when the process exited (it waits for the seed strip
and the directions panel before grabbing the window). The first run after a change of the C++
sources also includes compiling the ops; later runs load them from the cache.

    python -m bench.startup --write                       # the source install, default model
    python -m bench.startup --app dist/stylegan-explorer/stylegan-explorer --write   # the bundle
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import machine_summary, write_section

MARKER = "first image shown"


def launch_once(command: list[str], timeout: float) -> tuple[float, float]:
    """(seconds to the first image, seconds to exit) of one run."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    start = time.perf_counter()
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    first = float("nan")
    errors = []
    assert proc.stderr is not None
    for line in proc.stderr:
        if MARKER in line and first != first:
            first = time.perf_counter() - start
        else:
            errors.append(line.rstrip())
    code = proc.wait(timeout=timeout)
    total = time.perf_counter() - start
    if code != 0 or first != first:
        raise SystemExit(f"{shlex.join(command)} failed (exit {code}):\n" + "\n".join(errors[-20:]))
    return first, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", default=None, help="app executable (default: this Python's explorer)")
    parser.add_argument("--model", default=None, help="model to open (default: the app's default model)")
    parser.add_argument("--runs", type=int, default=3, help="launches to time")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one launch may take")
    parser.add_argument("--write", action="store_true", help="write the result into docs/benchmarks.md")
    args = parser.parse_args(argv)

    base = [args.app] if args.app else [sys.executable, "-m", "explorer.app"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        command = base + ["--screenshot", str(Path(tmp) / "shot.png"), "--timeout", str(args.timeout)]
        if args.model:
            command += ["--model", args.model]
        for i in range(args.runs):
            first, total = launch_once(command, args.timeout)
            rows.append((first, total))
            print(f"run {i + 1}: first image {first:.2f} s, exit {total:.2f} s", flush=True)

    what = args.app or "source install (python -m explorer.app)"
    lines = [
        f"App: `{what}`, model: `{args.model or 'default (resources/models/)'}`. {machine_summary()}",
        "",
        "| run | launch to first image (s) | launch to exit (s) |",
        "|---|---|---|",
    ]
    lines += [f"| {i + 1} | {first:.2f} | {total:.2f} |" for i, (first, total) in enumerate(rows)]
    cmd = "python -m bench.startup " + shlex.join(argv if argv is not None else sys.argv[1:])
    body = "\n".join(lines) + f"\n\nCommand: `{cmd.strip()}`"
    print(body)
    if args.write:
        write_section("Explorer launch time" + (" (bundle)" if args.app else ""), body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
