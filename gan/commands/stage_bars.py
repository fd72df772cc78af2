"""Terminal progress for work reported as progress(done, total, what): one tqdm bar per stage.

Not a sub-command (gan/cli.py lists the command modules by name)."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


class StageBars:
    """A gan.progress.Progress: bars(done, total, stage) (plus an optional note shown next to the
    counts). On a terminal: one tqdm bar per stage. Else
    (a pipe, a log file, an IDE) a plain line per stage at its start, every `every_s` seconds and
    at its end, so a long run is never silent."""

    def __init__(self, stream=None, every_s: float = 15.0, unit: str = "img"):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every_s, self.unit = every_s, unit
        self.bars: dict[str, tqdm] = {}
        self._lines: dict[str, tuple[float, float]] = {}  # stage -> (start, last line printed)

    def __call__(self, done: int, total: int, what: str = "", note: str = "") -> None:
        stage = what or self.unit
        if self.tty:
            self._bar(stage, done, total, note)
        else:
            self._line(stage, done, total, note)

    def _bar(self, stage: str, done: int, total: int, note: str) -> None:
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=stage, unit=self.unit, file=self.stream)
        if note:
            bar.set_postfix_str(note, refresh=False)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    def _line(self, stage: str, done: int, total: int, note: str) -> None:
        now = time.monotonic()
        start, last = self._lines.get(stage, (now, -float("inf")))
        finished = done >= total
        if stage in self._lines and not finished and now - last < self.every_s:
            return
        self._lines[stage] = (start, now)
        percent = 100.0 * done / total if total else 100.0
        elapsed = f", {now - start:.0f} s" if now > start else ""
        extra = f", {note}" if note else ""
        print(
            f"{stage}: {done}/{total} {self.unit} ({percent:.0f}%{elapsed}{extra})",
            file=self.stream,
            flush=True,
        )

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
