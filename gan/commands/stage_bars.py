"""Terminal progress for work reported as progress(stage, done, total): one tqdm bar per stage.

Not a sub-command (gan/cli.py lists the command modules by name)."""

from __future__ import annotations

from tqdm import tqdm


class StageBars:
    """Callable progress(stage, done, total); bars hide themselves when output is not a terminal."""

    def __init__(self):
        self.bars: dict[str, tqdm] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=stage, unit="img", disable=None)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
