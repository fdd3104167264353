"""What to do with machines reached over SSH: host specs, host checks, and who inits or joins the Swarm.

Everything here is pure (plain data in, plain data out), so that the verdicts and the plan are tested
without a host or a daemon. swarmml.cluster.ssh gathers the facts over SSH and carries the plan out.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

MIN_FREE_GB = 5.0  # as doctor asks of a local engine
TIME_WARN_S, TIME_FAIL_S = 2.0, 60.0  # swarm's TLS certificates and raft leases tolerate seconds, not minutes
SWARM_PORTS = (("2377", "tcp", "managers"), ("7946", "tcp", "all"), ("7946", "udp", "all"), ("4789", "udp", "all"))

_SPEC_RE = re.compile(r"^(?:(?P<user>[A-Za-z_][A-Za-z0-9_.-]{0,31})@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)"
                      r"(?::(?P<port>\d{1,5}))?$")
_LABEL_RE = re.compile(r"^(?P<host>[^:=\s]+):(?P<key>[A-Za-z0-9][A-Za-z0-9_.-]*)=(?P<value>[^\s]*)$")
IFACE_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")


class SpecError(ValueError):
    """A --ssh, --label or --advertise-iface value that can't be read (its message is one line)."""


@dataclass(frozen=True)
class HostSpec:
    user: str
    host: str
    port: int = 22

    @property
    def name(self) -> str:
        """How the person wrote it (user@host[:port]): what messages call the host."""
        return f"{self.user}@{self.host}" + (f":{self.port}" if self.port != 22 else "")

    @property
    def url(self) -> str:
        """The engine over SSH, as the docker CLI and the SDK write it."""
        return f"ssh://{self.user}@{self.host}" + (f":{self.port}" if self.port != 22 else "")


def parse_spec(value: str, default_user: str = "root") -> HostSpec:
    m = _SPEC_RE.match((value or "").strip())
    if not m or (m.group("port") and not 0 < int(m.group("port")) < 65536):
        raise SpecError(f"--ssh: expected [USER@]HOST[:PORT], got {value!r}")
    return HostSpec(m.group("user") or default_user, m.group("host").strip("[]"), int(m.group("port") or 22))


def parse_specs(values, default_user: str = "root") -> list[HostSpec]:
    specs = [parse_spec(v, default_user) for v in values]
    seen: set[tuple[str, int]] = set()
    for s in specs:
        if (s.host, s.port) in seen:
            raise SpecError(f"--ssh: host {s.host} is given twice")
        seen.add((s.host, s.port))
    return specs


def parse_labels(values, specs: list[HostSpec]) -> dict[str, dict[str, str]]:
    """'h2:gpu=no' -> {'h2': {'gpu': 'no'}}, keyed by host as given in --ssh (its user may be left out)."""
    by_host = {s.host: s for s in specs}
    out: dict[str, dict[str, str]] = {}
    for v in values:
        m = _LABEL_RE.match(v.strip())
        if not m:
            raise SpecError(f"--label: expected HOST:KEY=VALUE, got {v!r}")
        host = m.group("host").split("@")[-1]
        if host not in by_host:
            raise SpecError(f"--label {v!r}: {host} is not one of the --ssh hosts ({', '.join(by_host)})")
        if m.group("key").startswith("io.swarmml."):
            raise SpecError(f"--label {v!r}: keys under io.swarmml. are swarmml's own")
        out.setdefault(host, {})[m.group("key")] = m.group("value")
    return out


# --- host facts and their verdicts ----------------------------------------------------

# Sent on stdin to `sh -s` on each host: one key=value a line, nothing changed there.
# IFACE (optional) is set on the command line, from a checked --advertise-iface.
FACTS_SCRIPT = r"""
osr() { ( . /etc/os-release 2>/dev/null; eval "echo \${$1:-}" ); }
echo "os_id=$(osr ID)"
echo "os_name=$(osr PRETTY_NAME)"
echo "kernel=$(uname -r)"
echo "uid=$(id -u)"
echo "user=$(id -un)"
for p in apt-get dnf yum zypper apk pacman; do
  if command -v $p >/dev/null 2>&1; then echo "pkg=$p"; break; fi
done
command -v bash >/dev/null 2>&1 && echo "bash=yes"
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then echo "sudo=yes"; fi
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo "cgroup=v2"; elif [ -d /sys/fs/cgroup/memory ]; then
  echo "cgroup=v1"; fi
grep -qw overlay /proc/filesystems 2>/dev/null && echo "overlay=yes"
if [ -d /proc/sys/net/ipv4/vs ] || [ -e /proc/net/ip_vs ]; then echo "ipvs=yes"; fi
[ -e /proc/sys/net/bridge ] || grep -qw bridge /proc/modules 2>/dev/null && echo "bridge=yes"
d=/var/lib/docker; [ -d $d ] || d=/var/lib; [ -d $d ] || d=/
echo "disk_path=$d"
echo "disk_free_kb=$(df -Pk $d 2>/dev/null | awk 'NR==2 {print $4}')"
if command -v dockerd >/dev/null 2>&1; then echo "dockerd=yes"; fi
D=docker; [ "$(id -u)" -ne 0 ] && ! docker info >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1 && D="sudo -n docker"
if $D info >/dev/null 2>&1; then echo "engine=$($D version --format '{{.Server.Version}}' 2>/dev/null)"; fi
echo "ssh_connection=$SSH_CONNECTION"
if [ -n "${IFACE:-}" ]; then
  echo "iface_addr=$(ip -4 -o addr show dev "$IFACE" 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -n1)"
fi
echo "time=$(date +%s.%N)"
"""


@dataclass
class Facts:
    """What FACTS_SCRIPT found on one host, plus the clock offset measured around it."""
    os_id: str = ""
    os_name: str = ""
    kernel: str = ""
    uid: int = -1
    user: str = ""
    pkg: str | None = None
    bash: bool = False
    sudo: bool = False
    cgroup: str | None = None
    overlay: bool = False
    ipvs: bool = False
    disk_path: str = ""
    free_gb: float | None = None
    dockerd: bool = False
    engine: str | None = None  # the server version of an engine that answers, else None
    reached_at: str | None = None  # the host's address this SSH session came in on
    iface_addr: str | None = None
    offset_s: float | None = None


def parse_facts(text: str, sent_at: float | None = None, received_at: float | None = None) -> Facts:
    """FACTS_SCRIPT's output -> Facts; the offset is the host's clock against the middle of the round trip."""
    kv = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            kv[key.strip()] = value.strip()
    free_kb = kv.get("disk_free_kb", "")
    conn = kv.get("ssh_connection", "").split()
    offset = None
    if kv.get("time") and sent_at is not None and received_at is not None:
        try:
            offset = float(kv["time"]) - (sent_at + received_at) / 2
        except ValueError:
            offset = None
    return Facts(
        os_id=kv.get("os_id", ""), os_name=kv.get("os_name", ""), kernel=kv.get("kernel", ""),
        uid=int(kv["uid"]) if kv.get("uid", "").isdigit() else -1, user=kv.get("user", ""),
        pkg=kv.get("pkg") or None, bash=kv.get("bash") == "yes", sudo=kv.get("sudo") == "yes",
        cgroup=kv.get("cgroup") or None, overlay=kv.get("overlay") == "yes", ipvs=kv.get("ipvs") == "yes",
        disk_path=kv.get("disk_path", ""), free_gb=int(free_kb) / 1e6 if free_kb.isdigit() else None,
        dockerd=kv.get("dockerd") == "yes", engine=kv.get("engine") or None,
        reached_at=conn[2] if len(conn) >= 4 else None, iface_addr=kv.get("iface_addr") or None, offset_s=offset)


@dataclass(frozen=True)
class Verdict:
    level: str  # ok | warn | fail
    check: str
    message: str


def verdicts(facts: Facts) -> list[Verdict]:
    """Pure: whether this host can run a swarm node, one verdict per check; any fail stops the host."""
    out = [Verdict("ok", "os", f"{facts.os_name or facts.os_id or 'unknown OS'}, kernel {facts.kernel}")]
    if facts.uid != 0 and not facts.sudo:
        out.append(Verdict("fail", "root", f"user {facts.user or '?'} is not root and `sudo -n` asks for a password; "
                                           "log in as root or allow this user sudo without a password"))
    if facts.cgroup is None:
        out.append(Verdict("fail", "kernel", "no cgroup filesystem under /sys/fs/cgroup: containers can't run here"))
    else:
        out.append(Verdict("ok" if facts.overlay else "warn", "kernel",
                           f"cgroup {facts.cgroup}" + (", overlayfs" if facts.overlay else
                                                       "; no overlayfs: the engine falls back to a slow driver")))
    if facts.engine:
        out.append(Verdict("ok", "engine", f"engine {facts.engine} answers"))
    elif facts.pkg == "apt-get" and not facts.bash:
        out.append(Verdict("fail", "engine", "no Docker engine answers and no bash to run swarmml's engine install "
                                             "(engine-up.sh); install bash, or Docker, there first"))
    elif facts.pkg != "apt-get":
        found = f"found only {facts.pkg}" if facts.pkg else "found no package manager"
        out.append(Verdict("fail", "engine", f"no Docker engine answers and swarmml installs one only with apt-get "
                                             f"({found}); install Docker there first"))
    else:
        out.append(Verdict("ok", "engine", "no engine yet: Debian's docker.io will be installed with apt-get"))
    if facts.free_gb is not None:
        ok = facts.free_gb >= MIN_FREE_GB
        out.append(Verdict("ok" if ok else "fail", "disk", f"{facts.free_gb:.1f} GB free under {facts.disk_path}"
                           + ("" if ok else f"; the engine and images need at least {MIN_FREE_GB:.0f} GB")))
    if facts.offset_s is not None:
        off = abs(facts.offset_s)
        level = "ok" if off < TIME_WARN_S else "warn" if off < TIME_FAIL_S else "fail"
        out.append(Verdict(level, "time", f"clock {facts.offset_s:+.1f} s from this machine's"
                           + ("" if level == "ok" else "; run an NTP client (chrony, systemd-timesyncd) there")))
    return out


def failure(found: list[Verdict]) -> str | None:
    """The first failing verdict's message, or None."""
    return next((v.message for v in found if v.level == "fail"), None)


def advertise_addr(facts: Facts, iface: str | None) -> str | None:
    """Pure: the address the node advertises: --advertise-iface's, else the one SSH reached it at."""
    if iface:
        return facts.iface_addr
    return facts.reached_at


# --- the plan: who inits, who joins, who is left alone ------------------------------------

@dataclass
class SwarmState:
    """One host's engine as the Swarm sees it (from `docker info`)."""
    state: str = "inactive"  # inactive | pending | active | error | locked
    cluster_id: str | None = None  # only managers know it
    node_id: str | None = None
    manager: bool = False


@dataclass(frozen=True)
class Step:
    host: str  # HostSpec.name
    action: str  # keep | init | join | leave-join | leave-init | refuse
    role: str  # manager | worker
    why: str = ""


def plan(hosts: list[str], states: dict[str, SwarmState], managers: int, ours: str | None,
         our_nodes: frozenset[str] | set[str] = frozenset(), force: bool = False,
         manager_elsewhere: bool = False) -> list[Step]:
    """Pure: what to do on each host (in --ssh order; the first `managers` of them are managers).

    ours: the swarm's cluster ID as recorded by an earlier run (None: no earlier run); our_nodes: the node IDs
    its managers list (a worker knows no cluster ID, only its node ID). A host in that swarm is kept as it is;
    one in any other swarm is refused unless force, which has it leave that swarm first.
    Hosts missing from states (they failed their checks) are left out. manager_elsewhere: a manager of ours
    answers that is not among hosts (a run that only adds a host), so nobody inits.
    """
    steps: list[Step] = []
    joinable = manager_elsewhere or ours is not None and any(s.state == "active" and s.manager and s.cluster_id == ours
                                                             for s in states.values())
    for i, host in enumerate(hosts):
        if host not in states:
            continue
        s, role = states[host], "manager" if i < managers else "worker"
        mine = ours is not None and s.state == "active" and (s.cluster_id == ours or s.node_id in our_nodes)
        if mine:
            steps.append(Step(host, "keep", "manager" if s.manager else "worker", "already a node of this swarm"))
            continue
        busy = s.state != "inactive"
        first = not joinable and not any(st.action in ("init", "leave-init") for st in steps)
        if busy and not force:
            where = f"swarm {s.cluster_id[:12]}" if s.cluster_id else "another swarm"
            steps.append(Step(host, "refuse", role, f"this host is already in {where} (state {s.state}); "
                                                   "add --force to have it leave that swarm and join this one"))
            continue
        if first:
            steps.append(Step(host, "leave-init" if busy else "init", "manager"))
        else:
            steps.append(Step(host, "leave-join" if busy else "join", role))
    return steps


def changes(steps: list[Step]) -> list[Step]:
    return [s for s in steps if s.action not in ("keep", "refuse")]


# --- doctor: Swarm's ports between the nodes -------------------------------------------------

# Sent to `bash -s` on each node with TARGETS="ip:port ..." (checked addresses): a TCP connect to each
# peer's swarm ports, and whether this node listens on 7946/udp (gossip) and 4789/udp (VXLAN), read from
# /proc since UDP can't be probed from outside without a task on an overlay network.
PORTS_SCRIPT = r"""
for t in $TARGETS; do
  if timeout 3 bash -c "exec 3<>/dev/tcp/${t%:*}/${t#*:}" 2>/dev/null; then echo "tcp $t ok"; else echo "tcp $t no"; fi
done
for p in 7946:1F0A 4789:12B5; do
  if grep -qi ":${p#*:} " /proc/net/udp /proc/net/udp6 2>/dev/null; then s=ok; else s=no; fi
  echo "udp ${p%:*} $s"
done
"""


def port_targets(peers: list[tuple[str, str]], me: str) -> list[str]:
    """Pure: ip:port for each peer (addr, role) other than me: 2377 to managers, 7946 to every node."""
    out = []
    for addr, role in peers:
        if addr != me:
            out += ([f"{addr}:2377"] if role == "manager" else []) + [f"{addr}:7946"]
    return out


def port_verdicts(output: str) -> list[Verdict]:
    """Pure: PORTS_SCRIPT's output -> one verdict for TCP, one per UDP port."""
    closed, reached, udp = [], 0, {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "tcp":
            if parts[2] == "ok":
                reached += 1
            else:
                closed.append(parts[1])
        elif len(parts) == 3 and parts[0] == "udp":
            udp[parts[1]] = parts[2] == "ok"
    out = [Verdict("fail", "ports", f"can't reach {', '.join(closed)} (tcp): open 2377/tcp to the managers and "
                                    "7946/tcp+udp, 4789/udp between all nodes") if closed else
           Verdict("ok", "ports", f"reaches its peers' swarm ports ({reached} tcp checks)")]
    if not udp.get("7946", True):
        out.append(Verdict("warn", "ports", "not listening on 7946/udp: the engine's gossip does not run here"))
    out.append(Verdict("ok", "ports", "4789/udp (VXLAN) listening") if udp.get("4789") else
               Verdict("ok", "ports", "4789/udp (VXLAN) opens once an overlay network has a task here; "
                                      "let it through between the nodes"))
    return out


def host_verdicts(facts: Facts) -> list[Verdict]:
    """Pure: doctor's view of a formed node: engine, disk, and whether the routing mesh works (IPVS)."""
    out = [v for v in verdicts(facts) if v.check in ("engine", "disk", "time")]
    out.append(Verdict("ok", "routing", "kernel has IPVS: the ingress routing mesh and VIP endpoints work")
               if facts.ipvs else
               Verdict("warn", "routing", "kernel has no IPVS: the routing mesh does not route here; the gateway "
                                          "is needed (docker-stack.yml's, with host-mode ports and dnsrr)"))
    return out
