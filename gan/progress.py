"""The one shape of progress callbacks in gan: progress(done, total, what="").

done of total units are finished; `what` names the stage or carries a short note ("rendering
seeds", "target 0.123, keep 0.045"), "" when the work has one stage. Callers of gan (the CLI's
bars, the explorer's bridges) pass any callable of this shape; None means no reports.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, done: int, total: int, what: str = "") -> None: ...
