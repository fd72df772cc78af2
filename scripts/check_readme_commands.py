"""Run every command README.md gives, as written, in a fresh clone, and say how each one ended.

    git clone <repo> /tmp/clone && cd /tmp/clone && make test   # or make .venv/.installed
    .venv/bin/python scripts/check_readme_commands.py --report readme_check.md

Commands are taken from the README's ```bash blocks and from inline code that starts with a
command (`gan ...`, `python -m ...`, `make ...`, `scripts/...`, `xvfb-run ...`). They run from the
repository root with `.venv/bin` first on PATH (an activated virtual environment, as the README
asks), one after another in README order, so files one command writes are there for the next.

The README names files a user has (`ffhq.pkl`, `~/Pictures/cats`, a run folder `runs/00000-...`);
each such name is replaced by a stand-in made here, and the report lists every replacement:
NVIDIA-written pickles from ../shared/fixtures/official-pickles, copies of the shipped models,
folders of toon-face JPEGs and PNGs (one unreadable file among them), and a 256 px StyleGAN3-T
pickle in NVIDIA's layout (tests/support/official_layout.py) for the 256 px fine-tune recipe.
Nothing else in a command is changed.

Without a DISPLAY the commands get one of their own (Xvfb :97), as a reader at a desktop has.

Outcomes: `ok` (exit 0), `failed` (exit status and the last lines of its output), or `running`:
a long command (training, a 20k-image data set, a display) still working when its time was up,
then stopped with Ctrl-C (SIGINT) and given 60 s to stop cleanly (training 900 s: it finishes the
phase of the step it is in and writes a snapshot); its last output line shows how far it got.
`skipped` commands are listed with the reason (building the standalone app, running the suite).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STANDINS = "readme-standins"  # folder of stand-in files, inside the clone

# Inline code spans that are commands (anything else in backticks is a name or a flag).
COMMAND_STARTS = ("gan ", "python -m ", "make ", "scripts/", "xvfb-run ", "QT_QPA_PLATFORM=", ".venv/bin/")

# Inline code that names a command in prose (not a command line to run as it stands).
MENTIONS = {
    "gan COMMAND --help",
    "gan info FILE",
    "gan info",
    "gan convert",
    "gan train",
    "gan dataset toon",
    "gan directions refine --per-layer",
    "gan directions measure --strength 3 --set-range low",
    "xvfb-run -a",
    ".venv/bin/gan",
    "scripts/make_anime_model.sh SNAPSHOT",
}

# Commands this script does not run, with the reason printed in the report.
SKIP = {
    "make test": "the suite itself (CI runs it on every submission)",
    "make dist": "builds the 1.1 GB standalone app (make test-dist checks it)",
    "make test-dist": "builds the 1.1 GB standalone app and checks its pictures (minutes)",
    "make run INSTALL_DISPLAY_LIBS=1": "installs Debian packages as root",
    "python -m bench.startup --app dist/stylegan-explorer/stylegan-explorer --runs 3": "needs make dist",
}

# Seconds a command may run before it is stopped with Ctrl-C (the first entry it contains wins).
TIMEOUTS = [
    ("gan dataset toon --count 20000", 900),  # later commands need its data set
    ("gan dataset convert", 300),
    ("screenshot_training_dialog.py", 1200),  # a Qt app: runs to its end, it does not stop on Ctrl-C
    ("scripts/make_", 120),
    ("make run", 120),
]
DEFAULT_TIMEOUT = 120

# Names of files a README reader has and this clone does not; make_standins makes one for each.
STANDIN_NAMES = (
    "model.pkl",
    "stylegan3-t-ffhq-1024x1024.pkl",
    "stylegan3-t-ffhqu-256x256.pkl",
    "sg2.pkl",
    "sg3t.pkl",
    "sg3r.pkl",
    "toon.safetensors",
    "base.safetensors",
    "toon-anime.safetensors",
    "sg2.safetensors",
    "sg3t.safetensors",
    "sg3r.safetensors",
    "runs/00000-.../network-snapshot-000100.safetensors",
    "runs/00001-.../network-snapshot-000200.safetensors",
    "~/Pictures/cats",
    "my_photos/",
    "my_anime_faces/",
    "photo.jpg",
)


@dataclass
class Command:
    line: int  # README line where it starts
    text: str  # as written (continuations joined)


@dataclass
class Outcome:
    command: Command
    argv_text: str  # after stand-ins replaced names
    status: str  # ok | failed | running | skipped
    seconds: float
    detail: str


def readme_commands(text: str) -> list[Command]:
    """Commands of README text, in order, each once: bash block lines (backslash continuations
    joined, comments dropped) and inline code spans that start with a command (not MENTIONS)."""
    commands: list[Command] = []
    lines = text.splitlines()
    in_block, pending, start = False, "", 0
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            in_block = stripped == "```bash" if not in_block else False
            continue
        if in_block:
            if not pending:
                start = number
            pending += stripped[:-1] + " " if stripped.endswith("\\") else stripped
            if not stripped.endswith("\\"):
                words = shlex.split(pending, comments=True)
                pending = ""
                if words:
                    commands.append(Command(start, shlex.join(words)))
    # Inline spans may wrap over two lines of the Markdown source.
    prose = _outside_blocks(text)
    for match in re.finditer(r"`([^`]+)`", prose, flags=re.S):
        span = " ".join(match.group(1).split())
        if span.startswith(COMMAND_STARTS) and span not in MENTIONS:
            number = prose.count("\n", 0, match.start()) + 1
            commands.append(Command(number, span))
    first = {}
    for c in sorted(commands, key=lambda c: c.line):
        first.setdefault(c.text, c)
    return list(first.values())


def _outside_blocks(text: str) -> str:
    """text with fenced blocks blanked out (line numbers kept)."""
    return re.sub(r"```.*?```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)


def make_standins(shared: Path) -> dict[str, str]:
    """Stand-in files under STANDINS; returns README name -> stand-in path (relative to ROOT)."""
    from gan.data.toon import toon_image

    folder = ROOT / STANDINS
    folder.mkdir(exist_ok=True)
    pickles = shared / "fixtures" / "official-pickles"
    for name in ("sg3t16", "sg2s32fp16", "ada32", "tf32"):
        if not (pickles / f"{name}.pkl").is_file():
            sys.exit(
                f"{pickles / name}.pkl is missing: pass --shared, the folder with fixtures/official-pickles"
            )

    def image_folder(name: str, styles: tuple[str, ...], seed: int) -> str:
        out = folder / name
        (out / "nested").mkdir(parents=True, exist_ok=True)
        for i in range(24):
            image, _ = toon_image(seed, i, 128, styles)
            sub = out / "nested" if i % 3 == 0 else out
            image.save(sub / (f"{i:03d}.jpg" if i % 2 else f"{i:03d}.png"))
        (out / "broken.jpg").write_bytes(b"not a picture")  # the README promises it is skipped
        return f"{STANDINS}/{name}"

    big = folder / "sg3t-256.pkl"
    if not big.is_file():
        write_official_256(big)
    # Copies: a reader's own model files are not the shipped ones (which need --force to change).
    default, anime = f"{STANDINS}/toon.safetensors", f"{STANDINS}/toon-anime.safetensors"
    shutil.copyfile(ROOT / "resources/models/default-toon64-sg3t.safetensors", ROOT / default)
    shutil.copyfile(ROOT / "resources/models/toon64-sg3t-anime.safetensors", ROOT / anime)
    nvidia = {k: str((pickles / f"{k}.pkl").resolve()) for k in ("sg3t16", "sg2s32fp16", "ada32", "tf32")}
    standins = {
        "model.pkl": nvidia["sg3t16"],
        "stylegan3-t-ffhq-1024x1024.pkl": nvidia["sg3t16"],
        "stylegan3-t-ffhqu-256x256.pkl": f"{STANDINS}/sg3t-256.pkl",
        "sg2.pkl": nvidia["ada32"],
        "sg3t.pkl": nvidia["sg2s32fp16"],
        "sg3r.pkl": nvidia["tf32"],
        "toon.safetensors": default,
        "base.safetensors": default,
        "toon-anime.safetensors": anime,
        "sg2.safetensors": default,
        "sg3t.safetensors": default,
        "sg3r.safetensors": anime,
        "runs/00000-.../network-snapshot-000100.safetensors": default,
        "runs/00001-.../network-snapshot-000200.safetensors": anime,
        "~/Pictures/cats": image_folder("cats", ("photo",), 71),
        "my_photos/": image_folder("my_photos", ("photo",), 72) + "/",
        "my_anime_faces/": image_folder("my_anime_faces", ("anime",), 73) + "/",
    }
    photo, _ = toon_image(31337, 1, 256, ("photo",))  # a held-out face (index 0 is one the detector misses)
    photo.save(folder / "photo.jpg", quality=92)
    standins["photo.jpg"] = f"{STANDINS}/photo.jpg"
    assert tuple(standins) == STANDIN_NAMES
    return standins


def write_official_256(path: Path) -> None:
    """A tiny 256 px StyleGAN3-T snapshot pickled in NVIDIA's layout (bare class names, module
    source as text), written by the same writer the tests check against NVIDIA's files."""
    import pickle

    import torch

    sys.path.insert(0, str(ROOT))
    from gan.networks import build_network, network_kind
    from tests.support import official_layout as layout

    class Registry:  # install_official_modules wants pytest's monkeypatch; a plain setitem does
        def setitem(self, mapping, key, value):
            mapping[key] = value

    ns = layout.install_official_modules(Registry())
    torch.manual_seed(0)
    g_kwargs = layout.tiny_sg2_init_kwargs(32, 256, 1024, 2)  # StyleGAN3's Generator takes the same
    d_kwargs = dict(c_dim=0, img_resolution=256, img_channels=3, channel_base=1024, channel_max=32)
    G = build_network(network_kind("training.networks_stylegan3.Generator"), g_kwargs)
    D = build_network(network_kind("training.networks_stylegan2.Discriminator"), d_kwargs)
    snapshot = {
        "G": layout.official_layout(G, "networks_stylegan3", layout.easy(ns, g_kwargs)),
        "D": layout.official_layout(D, "networks_stylegan2", layout.easy(ns, d_kwargs)),
        "G_ema": layout.official_layout(G, "networks_stylegan3", layout.easy(ns, g_kwargs)),
        "augment_pipe": None,
    }
    with open(path, "wb") as f:
        pickle.dump(snapshot, f, protocol=4)


def substitute(command: str, standins: dict[str, str]) -> str:
    """command with each README name that has a stand-in replaced (whole words only)."""
    words = shlex.split(command)
    return shlex.join(standins.get(w, w) for w in words)


def grace_for(command: str) -> int:
    """Seconds a stopped command may take to end: training finishes the phase of its step that
    is running and writes a snapshot (a phase of an official-size network takes minutes on a CPU)."""
    return 900 if command.startswith("gan train") else 60


def timeout_for(command: str) -> int:
    return next((t for part, t in TIMEOUTS if part in command), DEFAULT_TIMEOUT)


def _default_ctrl_c() -> None:
    """Ctrl-C as in a terminal: a shell running this script in the background ignores SIGINT,
    and ignored signals are inherited, so Python in the command would never see it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run(command: Command, standins: dict[str, str], env: dict) -> Outcome:
    if command.text in SKIP:
        return Outcome(command, command.text, "skipped", 0.0, SKIP[command.text])
    text = substitute(command.text, standins)
    limit = timeout_for(command.text)
    log = ROOT / STANDINS / f"line{command.line:04d}.log"
    t0 = time.monotonic()
    with open(log, "w") as out:
        # A shell, as a user types it (environment prefixes, ~); its own process group, so that
        # Ctrl-C reaches the command and not this script.
        proc = subprocess.Popen(
            ["bash", "-c", text],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_default_ctrl_c,
        )
        try:
            rc = proc.wait(timeout=limit)
            status = "ok" if rc == 0 else "failed"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGINT)
            stopping = time.monotonic()
            try:
                rc = proc.wait(timeout=grace_for(command.text))
                status = "running"
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                rc = proc.wait()
                status = "failed"
    seconds = time.monotonic() - t0
    tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-3:]
    stopped = f" {time.monotonic() - stopping:.0f} s after Ctrl-C at {limit} s" if status == "running" else ""
    detail = f"exit {rc}{stopped}"
    if tail:
        detail += ": " + " | ".join(line.strip()[:160] for line in tail)
    return Outcome(command, text, status, seconds, detail)


def report(outcomes: list[Outcome], standins: dict[str, str]) -> str:
    rows = ["| line | command | outcome | s | last output |", "|---|---|---|---|---|"]
    for o in outcomes:
        detail = o.detail.replace("|", "\\|")
        rows.append(f"| {o.command.line} | `{o.command.text}` | {o.status} | {o.seconds:.0f} | {detail} |")
    names = "\n".join(f"- `{k}` -> `{v}`" for k, v in standins.items())
    counts = {s: sum(o.status == s for o in outcomes) for s in ("ok", "running", "failed", "skipped")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    return f"README commands: {summary}\n\n" + "\n".join(rows) + f"\n\nStand-ins:\n{names}\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--shared", default=str(ROOT.parent / "shared"), help="folder with fixtures/official-pickles"
    )
    p.add_argument("--report", default=None, help="write the Markdown report here too")
    p.add_argument("--only", default=None, help="run only commands containing this text")
    args = p.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)

    commands = readme_commands((ROOT / "README.md").read_text())
    if args.only:
        commands = [c for c in commands if args.only in c.text]
    standins = make_standins(Path(args.shared))
    env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("CI", None)
    display = None
    if not env.get("DISPLAY") and shutil.which("Xvfb"):
        # A reader at a desktop has a display: `make run` opens its window there.
        display = subprocess.Popen(["Xvfb", ":97", "-screen", "0", "1600x1000x24"], stderr=subprocess.DEVNULL)
        env["DISPLAY"] = ":97"
    outcomes = []
    try:
        for command in commands:
            outcome = run(command, standins, env)
            print(f"line {command.line}: {outcome.status} ({outcome.seconds:.0f} s) {command.text}")
            if outcome.status == "failed":
                print(f"    {outcome.detail}", flush=True)
            outcomes.append(outcome)
    finally:
        if display is not None:
            display.terminate()
    text = report(outcomes, standins)
    print(text)
    if args.report:
        Path(args.report).write_text(text)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
