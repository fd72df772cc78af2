"""`python -m ops_cuda.build`: build (or find cached) the compiled kernels now, with a progress line.

`make run` and `make test` run this in their set-up step, so the one-time compile (1-2 min on a
2-core machine) happens visibly there instead of behind the explorer's first render. It never
fails the set-up: without a compiler it says why and that everything still works on the slower
reference ops (exit code 0; `--strict` makes that 1). `--stamp FILE` touches FILE after a
successful build so make can skip this step until the sources change.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from ops_cuda import _native


class _Ticker:
    """Prints how long the build has been running: one updating line on a terminal, otherwise a
    line every `every` seconds (logs of make, CI)."""

    def __init__(self, label: str, stream=None, every: float = 15.0):
        self.label, self.stream, self.every = label, stream or sys.stdout, every
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.start = time.monotonic()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _run(self) -> None:
        interval = 1.0 if self.tty else self.every
        while not self._done.wait(interval):
            elapsed = time.monotonic() - self.start
            if self.tty:
                self.stream.write(f"\r{self.label} {elapsed:4.0f} s")
            else:
                self.stream.write(f"{self.label} still running after {elapsed:.0f} s\n")
            self.stream.flush()


def build(kind: str, out=None) -> bool:
    """Build or load the `kind` kernels, reporting on `out`; True when they are usable."""
    out = out or sys.stdout
    name = {"cpu": "C++ CPU", "cuda": "CUDA"}[kind]
    if _native.is_frozen():
        reason = _native.status(kind)
        print(f"ops_cuda: {name} kernels: {reason or 'prebuilt in this bundle'}", file=out)
        return not reason
    reason = _native.missing_tools(kind)
    if reason:
        print(
            f"ops_cuda: the {name} kernels cannot be built here ({reason}); everything works on the "
            "slower reference ops",
            file=out,
        )
        return False
    folder = _native.build_dir(kind)
    if _native.is_built(kind):
        _native.load_extension(kind)  # quick; proves the cached file loads
        print(f"ops_cuda: {name} kernels ready (cached in {folder})", file=out)
        return True
    print(f"ops_cuda: building the {name} kernels once (1-2 min on 2 cores) into {folder}", file=out)
    out.flush()

    def waiting(pid) -> None:
        who = f"process {pid}" if pid else "another process"
        print(f"ops_cuda: {who} is building them right now; waiting for it", file=out, flush=True)

    start = time.monotonic()
    try:
        with _Ticker(f"ops_cuda: building the {name} kernels…", out):
            pid = _native.builder_pid(kind)
            if pid:
                waiting(pid if pid > 0 else None)
            _native.load_extension(kind)
    except _native.NativeBuildError as exc:
        print(f"ops_cuda: {exc}; everything works on the slower reference ops", file=out)
        return False
    print(f"ops_cuda: {name} kernels built in {time.monotonic() - start:.0f} s", file=out)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops_cuda.build", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--kind",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="which kernels (auto: cpu, plus cuda when a CUDA device is present)",
    )
    parser.add_argument("--stamp", default=None, help="touch this file after a successful build")
    parser.add_argument("--strict", action="store_true", help="exit with 1 when the kernels are not usable")
    args = parser.parse_args(argv)
    if args.kind == "auto":
        import torch

        kinds = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        kinds = [args.kind]
    ok = all([build(kind) for kind in kinds])
    if ok and args.stamp:
        Path(args.stamp).parent.mkdir(parents=True, exist_ok=True)
        Path(args.stamp).touch()
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
