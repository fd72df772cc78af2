"""Named scalar statistics of a training run, collected per tick.

`StatsCollector` is an object the loop passes to whoever reports (the loss, the loop itself);
there is no global registry. Values given as tensors are summed on their device and only turned
into Python floats once per tick (`collect`), so reporting costs no device synchronisation.
With several processes, `collect` all-reduces the sums so every rank sees the same means.
"""

from __future__ import annotations

import json
import math
import os

import torch


class StatsCollector:
    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self._sums: dict[str, torch.Tensor] = {}  # name -> [sum, count]

    def report(self, name: str, value: torch.Tensor | float) -> None:
        """Add one value or a tensor of values (their mean counts by number of elements)."""
        if isinstance(value, torch.Tensor):
            v = value.detach().to(device=self.device, dtype=torch.float64).flatten()
            entry = torch.stack(
                [v.sum(), torch.tensor(float(v.numel()), device=self.device, dtype=torch.float64)]
            )
        else:
            entry = torch.tensor([float(value), 1.0], device=self.device, dtype=torch.float64)
        if name in self._sums:
            self._sums[name] += entry
        else:
            self._sums[name] = entry

    def collect(self, names_everywhere: list[str] | None = None) -> dict[str, float]:
        """Means since the last collect (then resets). With torch.distributed, every rank must call
        this and report the same names (pass names_everywhere to add missing ones as empty)."""
        names = sorted(set(self._sums) | set(names_everywhere or []))
        if not names:
            return {}
        zero = torch.zeros(2, device=self.device, dtype=torch.float64)
        stacked = torch.stack([self._sums.get(n, zero) for n in names])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(stacked)
        self._sums = {}
        values = stacked.cpu().tolist()
        return {n: (s / c if c > 0 else math.nan) for n, (s, c) in zip(names, values)}


class StatsWriter:
    """Appends one JSON object per tick to stats.jsonl (non-finite numbers as strings)."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)

    def write(self, record: dict[str, float | int | str]) -> None:
        clean = {
            k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in record.items()
        }
        with open(self.path, "a") as f:
            f.write(json.dumps(clean) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def truncate_after(self, tick: int) -> None:
        """Drop records of ticks after `tick` (a resumed run repeats them from its snapshot)."""
        if not os.path.exists(self.path):
            return
        kept = []
        with open(self.path) as f:
            for line in f:
                try:
                    if int(json.loads(line).get("tick", -1)) <= tick:
                        kept.append(line if line.endswith("\n") else line + "\n")
                except (ValueError, TypeError, AttributeError):
                    continue  # a torn last line after a crash
        from gan.io.files import atomic_write_bytes

        atomic_write_bytes(self.path, "".join(kept).encode())


def read_stats(path: str | os.PathLike) -> list[dict]:
    """The records of a stats.jsonl (skipping a torn last line)."""
    out = []
    with open(path) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out
