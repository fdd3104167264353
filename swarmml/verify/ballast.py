"""Busy loops at the lowest priority on every core of this machine, while verify's curve runs on a local cluster.

Why: the curve compares one replica with N, and on a local cluster they
share this machine's cores with everything else. One 0.25-CPU replica leaves
most cores idle; six keep them busy. On the VMs this project runs on, a
replica beside idle cores costs more CPU per request than the same replica
beside busy ones (measured, `scripts/bench_replica_cpu.py` and
`swarmml verify --steps 1,4`: 6.2 against 5.6 ms per request alone, 5.6
against 5.4 for each of four). Left alone, E(N) compares a replica on an
idle machine with replicas on a busy one, and comes out above 1.

Filling the idle cores gives every step the same machine. The loops run
under SCHED_IDLE: the kernel gives them a core only when nothing else wants
it, and a waking task takes the core from them at once, so they take no time
the cluster would have used. Their own CPU time is read back (verify.cpu, by
their pids), so that the machine's busy figure can leave them out.
"""
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


class Ballast:
    """`with Ballast(): ...` keeps one idle-priority busy loop per core running for the block."""

    def __init__(self, cores: int | None = None):
        self.cores = cores or os.cpu_count() or 1
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> "Ballast":
        self.procs = [subprocess.Popen([sys.executable, "-S", "-c", _LOOP, str(os.getpid())],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
                      for _ in range(self.cores)]
        return self

    def __exit__(self, *exc) -> None:
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()
        self.procs = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

