"""What verify reads from this machine, not from an engine.

CPU time of containers (cgroups), of the machine, of this thread, of the ballast's loops.

A scaling step is only meaningful if the replicas, not the gateway, the load
generator or the machine, were the limit. Containers of a local
Docker-in-Docker cluster run on this machine's kernel, so their cgroups are
readable here; on a remote swarm they are not, and their usage is unknown
(None). Snapshots are plain dicts; swarmml.verify.usage turns two into rates.
"""
import os
import resource
import time

CGROUP = os.environ.get("SWARMML_CGROUP_ROOT", "/sys/fs/cgroup")


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _container_cpu(container_id):
    """(cpu ns, throttled periods, periods) of one container, or None where its cgroup is not visible."""
    # cgroup v1 with the cgroupfs driver (a nested dockerd: /docker/<id>), then systemd's v1 and v2 layouts.
    v1 = [f"{CGROUP}/cpuacct/docker/{container_id}", f"{CGROUP}/cpu,cpuacct/docker/{container_id}",
          f"{CGROUP}/cpuacct/system.slice/docker-{container_id}.scope"]
    for base in v1:
        usage = _read(f"{base}/cpuacct.usage")
        if usage is not None:
            stat = _stat(_read(f"{base.replace('/cpuacct/', '/cpu/')}/cpu.stat") or _read(f"{base}/cpu.stat"))
            return int(usage), stat.get("nr_throttled", 0), stat.get("nr_periods", 0)
    for base in (f"{CGROUP}/docker/{container_id}", f"{CGROUP}/system.slice/docker-{container_id}.scope"):
        stat = _read(f"{base}/cpu.stat")
        if stat is not None:
            s = _stat(stat)
            return s.get("usage_usec", 0) * 1000, s.get("nr_throttled", 0), s.get("nr_periods", 0)
    return None


def _stat(text):
    out = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def _machine():
    """(busy cores-seconds, total cores-seconds) since boot, from /proc/stat's first line."""
    text = _read("/proc/stat")
    if not text:
        return None
    ticks = [int(v) for v in text.splitlines()[0].split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    total = sum(ticks[:8])  # guest time is already inside user
    return (total - idle) / hz, total / hz


def _processes_cpu(pids):
    """CPU seconds (user + system) these processes have used so far; nothing for one that is gone."""
    hz = os.sysconf("SC_CLK_TCK")
    ticks = 0
    for pid in pids:
        text = _read(f"/proc/{pid}/stat")
        if text:
            # proc(5): the name, in parentheses, may hold spaces; utime and stime are fields 14 and 15
            fields = text.rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / hz


def _thread_cpu():
    who = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def cpu_snapshot(groups, ballast=()):
    """groups: {name: [container ids]} -> a plain snapshot of their CPU, the machine's, and this thread's.

    ballast: pids of verify.ballast's loops, whose CPU the machine's busy figure leaves out.
    Call it from the thread that runs the load generator: its CPU is this thread's.
    """
    return {
        "ballast": _processes_cpu(ballast) if ballast else None,
        "at": time.monotonic(),
        "containers": {name: {cid: _container_cpu(cid) for cid in ids} for name, ids in groups.items()},
        "machine": _machine(),
        "cores": os.cpu_count(),
        "thread_cpu": _thread_cpu(),
    }
