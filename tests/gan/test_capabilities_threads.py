"""Threads for interactive work beside other processes: the CPU use of *other* processes is
measured (this process's own work does not count), and renders take fewer threads only while
other work holds cores."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from gan.capabilities import CpuUseElsewhere, threads_beside


class FakeCpu:
    """Scripted (all processes' CPU seconds, own CPU seconds) samples and a clock."""

    def __init__(self):
        self.now, self.all, self.own = 0.0, 100.0, 10.0

    def read(self):
        return (self.all, self.own)

    def clock(self):
        return self.now


def test_other_processes_cpu_is_all_minus_own_per_second():
    cpu = FakeCpu()
    use = CpuUseElsewhere(read=cpu.read, clock=cpu.clock)
    cpu.now, cpu.all, cpu.own = 2.0, 103.0, 11.0  # 3 CPU-s in 2 s, 1 of them ours
    assert use.cores() == pytest.approx(1.0)
    cpu.now, cpu.all = 2.1, 103.2  # too short an interval: the previous value stays
    assert use.cores() == pytest.approx(1.0)
    cpu.now, cpu.all, cpu.own = 3.0, 103.2, 11.5  # only our own work
    assert use.cores() == pytest.approx(0.0, abs=1e-9)


def test_without_proc_stat_nothing_is_known():
    use = CpuUseElsewhere(read=lambda: None)
    assert use.cores() is None
    assert threads_beside(use.cores()) is None


def test_threads_leave_the_busy_cores_alone():
    assert threads_beside(None, cores=2) is None
    assert threads_beside(0.3, cores=2) is None  # idle machine: torch's default
    assert threads_beside(0.7, cores=2) == 1
    assert threads_beside(2.0, cores=2) == 1
    assert threads_beside(2.0, cores=8) == 6
    assert threads_beside(11.0, cores=8) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_a_busy_child_process_is_seen():
    use = CpuUseElsewhere()
    child = subprocess.Popen(
        [sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 1.5: pass"]
    )
    time.sleep(1.2)
    busy = use.cores()
    child.wait(timeout=30)
    print(f"other processes kept {busy:.2f} cores busy")
    assert busy is not None and busy >= 0.3
