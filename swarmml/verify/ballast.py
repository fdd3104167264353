"""Busy loops at the lowest priority on the idle cores of this machine, while verify's curve runs on a local cluster.

Why: the curve compares one replica with N, and on a local cluster they
share this machine's cores with everything else. One 0.25-CPU replica leaves
most cores idle; six keep them busy. On the VMs this project runs on, a
replica beside idle cores costs more CPU per request than the same replica
beside busy ones (measured, `scripts/bench_replica_cpu.py` and
`swarmml verify --steps 1,4`: 6.2 against 5.6 ms per request alone, 5.6
against 5.4 for each of four). Left alone, E(N) compares a replica on an
idle machine with replicas on a busy one, and comes out above 1.

Filling the cores a step leaves wholly idle, one loop each (loops_for),
gives every step a machine with at most one partly idle core. The loops run
under SCHED_IDLE: the kernel gives them a core only when nothing else wants
it, and a waking task takes the core from them at once. On a nearly busy
machine they still took time from the cluster (measured, see loops_for), so
a partly busy core is left as it is. Their own CPU time is read back
(verify.cpu, by their pids), so that the machine's busy figure leaves them
out.
"""
import math
import os
import subprocess
import sys

# The child: lowest priority, then spin; every few million turns, stop if verify has gone (no orphans).
_LOOP = """
import os, sys
parent = int(sys.argv[1])
try:
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
except (AttributeError, OSError):
    os.nice(19)
turns = 0
while True:
    turns += 1
    if turns % 2000000 == 0 and os.getppid() != parent:
        break
"""


def loops_for(cores: int, busy: float) -> int:
    """Pure: how many of the machine's cores a step leaves wholly idle (busy: cores in use without the loops).

    Only those are filled. A loop on a partly busy core still takes time from the cluster: under two loops,
    six replicas, which leave 0.15 of 2 cores idle, got 0.19-0.21 CPU of their 0.25 (E(6) 0.80, twice).
    """
    return max(0, math.floor(cores - busy))


class Ballast:
    """`with Ballast() as b: b.fill(k)` keeps k idle-priority busy loops running, until fill changes k or the block
    ends."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> "Ballast":
        return self

    def __exit__(self, *exc) -> None:
        self.fill(0)

    def fill(self, loops: int) -> None:
        while len(self.procs) < loops:
            self.procs.append(subprocess.Popen([sys.executable, "-S", "-c", _LOOP, str(os.getpid())],
                                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL))
        while len(self.procs) > loops:
            p = self.procs.pop()
            p.kill()
            p.wait()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]
