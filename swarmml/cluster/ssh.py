"""`swarmml cluster create --ssh`: a Swarm on machines reached only over SSH, and `cluster destroy`.

Per host, in parallel (a thread each): an SSH session (paramiko; host keys are checked against
~/.ssh/known_hosts and never accepted blindly), the checks of swarmml.cluster.hosts, and, where no
engine answers, the same engine-up.sh that `cluster up` runs here, sent on the session's stdin (with
`sudo -n` when the user is not root). The Swarm itself is formed through each host's engine API over
SSH (`docker system dial-stdio`, as the docker CLI does): join tokens travel inside those sessions
and are never written anywhere or put on a command line.

The cluster is recorded as docker context swarmml-NAME: its endpoint is the first manager, and its
Metadata keeps the hosts, roles and the swarm's ID, so any verb (and the docker CLI) works on it and
a second run knows what it made.
"""
from __future__ import annotations

import os
import time
from typing import Any
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources

import paramiko

from swarmml import engine, labels
from swarmml.cluster import expose as exposing
from swarmml.cluster import hosts as rh
from swarmml.cluster.local import NAME_RE, default_managers
from swarmml.console import progress
from swarmml.engine import endpoint
from swarmml.engine import nodes, swarm
from swarmml.errors import NotFound, SwarmmlError, UsageError

MARK_DIR = "/var/lib/swarmml"  # on each host: engine-installed, when `create` installed its engine
RECORD_KEY = "Swarmml"  # where in the context's Metadata the cluster's record is
CONNECT_TIMEOUT_S = 15
INSTALL_TIMEOUT_S = 900


def remover(name: str) -> str:
    return f"swarmml cluster destroy {name}"


# --- SSH sessions --------------------------------------------------------------------

class Session:
    """One SSH connection to a host; commands run on it, with their stdin from us."""

    def __init__(self, spec: rh.HostSpec, identity: str | list[str] | None = None):
        self.spec = spec
        self.client = paramiko.SSHClient()
        self.client.load_system_host_keys()
        self.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        identity = identity or _configured_identity(spec.host)
        try:
            self.client.connect(spec.host, port=spec.port, username=spec.user, key_filename=identity,
                                allow_agent=identity is None, look_for_keys=identity is None,
                                timeout=CONNECT_TIMEOUT_S, banner_timeout=CONNECT_TIMEOUT_S,
                                auth_timeout=CONNECT_TIMEOUT_S)
        except (paramiko.SSHException, OSError) as exc:
            self.client.close()
            raise SwarmmlError(explain_ssh(exc, spec)) from None

    def run(self, command: str, stdin: bytes = b"", timeout: float = 120) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) of command; stdin is sent and closed first."""
        chan_in, chan_out, chan_err = self.client.exec_command(command, timeout=timeout)
        if stdin:
            chan_in.write(stdin)
        chan_in.channel.shutdown_write()
        out = chan_out.read().decode("utf-8", "replace")
        err = chan_err.read().decode("utf-8", "replace")
        return chan_out.channel.recv_exit_status(), out, err

    def close(self) -> None:
        self.client.close()


def _configured_identity(host: str) -> list[str] | None:
    """The IdentityFile(s) ~/.ssh/config gives host, as the SDK's ssh:// transport reads them."""
    path = os.path.join(os.environ.get("HOME") or os.path.expanduser("~"), ".ssh", "config")
    if not os.path.exists(path):
        return None
    found = paramiko.SSHConfig.from_path(path).lookup(host).get("identityfile")
    return [os.path.expanduser(p) for p in found] if found else None


def explain_ssh(exc: BaseException, spec: rh.HostSpec) -> str:
    """One line for a failed SSH login (endpoint.explain_failure knows the host-key and login cases)."""
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError) or isinstance(exc, ConnectionRefusedError):
        return f"nothing accepts SSH connections on port {spec.port} (connection refused); is sshd running there?"
    if isinstance(exc, paramiko.ssh_exception.SSHException) and "not found in known_hosts" in str(exc):
        return (f"its SSH host key is not in ~/.ssh/known_hosts; connect once with `ssh {spec.name}` to check "
                "and accept it (swarmml never accepts unknown host keys)")
    return endpoint.explain_failure(exc, spec.name).replace(f" to {spec.name}", "").replace(f" of {spec.name}", "")


def _sudo(facts: rh.Facts) -> str:
    return "" if facts.uid == 0 else "sudo -n "


def _engine_script() -> bytes:
    """The one bootstrap: the engine-up.sh `cluster up` runs on this machine (scripts/engine-up.sh too)."""
    return (resources.files("swarmml") / "data" / "bootstrap" / "engine-up.sh").read_bytes()


# --- per host ----------------------------------------------------------------------------

@dataclass
class HostResult:
    host: str
    role: str = ""
    action: str = ""  # what this run did: installed+joined, keep, ...
    engine: str | None = None
    addr: str | None = None
    installed: bool = False
    checks: list = field(default_factory=list)  # Verdicts as dicts
    error: str | None = None


@dataclass
class _Host:
    spec: rh.HostSpec
    result: HostResult
    facts: rh.Facts | None = None
    client: Any = None  # a DockerClient over SSH once its engine answers
    state: rh.SwarmState | None = None


def _prepare(h: _Host, identity: str | None, iface: str | None, status) -> None:
    """Checks, engine install and start, and the engine's swarm state; sets h.result.error on failure."""
    try:
        status("connecting")
        session = Session(h.spec, identity)
        try:
            status("checking")
            env = f"IFACE={iface} " if iface else ""
            sent = time.time()
            code, out, err = session.run(f"{env}sh -s", rh.FACTS_SCRIPT.encode(), timeout=60)
            h.facts = rh.parse_facts(out, sent, time.time())
            found = rh.verdicts(h.facts)
            h.result.checks = [asdict(v) for v in found]
            why = rh.failure(found)
            if why:
                raise SwarmmlError(why)
            h.result.addr = rh.advertise_addr(h.facts, iface)
            if not h.result.addr:
                raise SwarmmlError(f"interface {iface} has no IPv4 address" if iface else
                                   "can't tell which address this host is reached at (no SSH_CONNECTION)")
            if not h.facts.engine:
                status("installing the engine")
                code, out, err = session.run(f"{_sudo(h.facts)}bash -s", _engine_script(), timeout=INSTALL_TIMEOUT_S)
                if code != 0:
                    raise SwarmmlError((err.strip() or out.strip() or "engine-up.sh failed").splitlines()[-1])
                h.result.installed = True
                # so that `destroy --remove-engine` takes out only an engine that swarmml put there
                session.run(f"{_sudo(h.facts)}sh -c 'mkdir -p {MARK_DIR} && touch {MARK_DIR}/engine-installed'")
                if h.facts.uid != 0:
                    # the docker CLI's `system dial-stdio` (our API calls over SSH) runs as this user
                    session.run(f"sudo -n usermod -aG docker {h.facts.user}", timeout=30)
        finally:
            session.close()
        status("reaching the engine")
        h.client = engine.connect(h.spec.url, timeout=60)
        h.result.engine = h.client.version().get("Version")
        h.state = rh.SwarmState(**swarm.swarm_membership(h.client))
        status("ready")
    except SwarmmlError as exc:
        h.result.error = str(exc)
        status("failed")


def _in_parallel(hosts: list[_Host], work, what: str, show: bool) -> None:
    """work(host, status) for each host on a thread of its own, under a progress line per host."""
    with progress(transient=True, show=show) as bars:
        tasks = {h.spec.name: bars.add_task(f"{h.spec.name}", total=1, status=what) for h in hosts}

        def one(h):
            def status(text):
                bars.update(tasks[h.spec.name], status=text, completed=1 if text in ("ready", "failed") else 0)
            work(h, status)
        with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
            list(pool.map(one, hosts))


# --- the record ---------------------------------------------------------------------------

def context_name(name: str) -> str:
    return exposing.alias(name)


def read_record(name: str) -> dict | None:
    meta = endpoint.context_metadata(endpoint.config_dir(os.environ), context_name(name))
    found = (meta or {}).get(RECORD_KEY)
    return found if isinstance(found, dict) else None


def _write_record(name: str, record: dict) -> str:
    cfg = endpoint.config_dir(os.environ)
    first = next(h for h in record["hosts"] if h["role"] == "manager")
    files = endpoint.context_files(context_name(name), first["url"],
                                   f"swarmml cluster {name}: {len(record['hosts'])} hosts over SSH",
                                   metadata={RECORD_KEY: record})
    for rel, data in files.items():
        path = os.path.join(cfg, rel)
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return context_name(name)


def _ssh_config(name: str, hosts: list[str], identity: str | None) -> None:
    """With --identity, an ~/.ssh/config block for these hosts, which the SDK and the docker CLI read."""
    if not identity:
        return
    ssh_dir = os.path.join(os.environ.get("HOME") or os.path.expanduser("~"), ".ssh")
    os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
    block = exposing.identity_block(name, hosts, os.path.abspath(identity), remover(name))
    exposing.rewrite_file(os.path.join(ssh_dir, "config"),
                      lambda t: exposing.with_block(t, name, block, remover(name)))


def _drop_ssh_config(name: str) -> None:
    ssh_dir = os.path.join(os.environ.get("HOME") or os.path.expanduser("~"), ".ssh")
    exposing.rewrite_file(os.path.join(ssh_dir, "config"), lambda t: exposing.without_block(t, name, remover(name)),
                      create=False)


# --- create ---------------------------------------------------------------------------------

@dataclass
class CreateResult:
    name: str
    context: str | None = None
    hosts: list[HostResult] = field(default_factory=list)
    changed: bool = False
    duration_s: float = 0.0

    def errors(self) -> list[str]:
        return [f"{h.host}: {h.error}" for h in self.hosts if h.error]


def create(name: str, ssh: list[str], managers: int | None = None, identity: str | None = None,
           labels_given: Sequence[str] = (), advertise_iface: str | None = None, force: bool = False,
           show_progress: bool = False) -> CreateResult:
    """Form (or complete) the Swarm on these hosts; what failed on a host is in its result's error."""
    started = time.monotonic()
    if not NAME_RE.match(str(name)):
        raise UsageError(f"NAME: expected lowercase letters, digits and dashes (at most 31), got {name!r}")
    if not ssh:
        raise UsageError("give the hosts with --ssh USER@HOST, once per host")
    try:
        specs = rh.parse_specs(ssh)
        wanted_labels = rh.parse_labels(labels_given, specs)
    except rh.SpecError as exc:
        raise UsageError(str(exc)) from None
    if advertise_iface and not rh.IFACE_RE.match(advertise_iface):
        raise UsageError(f"--advertise-iface: expected an interface name like eth1, got {advertise_iface!r}")
    if identity and not os.path.isfile(identity):
        raise UsageError(f"--identity: no key file at {identity}")
    record = read_record(name) or {}
    identity = identity or record.get("identity")
    managers = managers or record.get("managers") or default_managers(len(specs))
    if not 1 <= managers <= len(specs):
        raise UsageError(f"--managers: expected 1 to the number of hosts ({len(specs)}), got {managers}")

    _ssh_config(name, [s.host for s in specs], identity)
    hosts = [_Host(s, HostResult(s.name)) for s in specs]
    _in_parallel(hosts, lambda h, status: _prepare(h, identity, advertise_iface, status), "waiting", show_progress)
    ok = {h.spec.name: h for h in hosts if not h.result.error}

    ours = record.get("swarm_id")
    our_nodes: set[str] = set()
    manager = next((h for h in ok.values() if h.state and h.state.manager and h.state.cluster_id == ours), None) \
        if ours else None
    if ours and manager is None:
        manager = _recorded_manager(record, {s.name for s in specs})
        if manager is None:
            raise SwarmmlError(f"none of cluster {name}'s managers answers, so no host can join it; give one of "
                               "them with --ssh, or run `swarmml doctor --cluster " + name + "`")
    if manager:
        our_nodes = {n["id"] for n in nodes.swarm_nodes(manager.client)}
    # Roles go by place: the recorded hosts keep theirs, and hosts new to the cluster come after them.
    recorded = [r["name"] for r in record.get("hosts", [])]
    order = recorded + [s.name for s in specs if s.name not in recorded]
    steps = rh.plan(order, {k: h.state for k, h in ok.items() if h.state}, managers, ours,
                    our_nodes, force, manager_elsewhere=manager is not None and manager.spec.name not in ok)
    changed = any(h.result.installed for h in hosts)
    for step in steps:
        h = ok[step.host]
        h.result.role = step.role
        h.result.action = ("installed, " if h.result.installed else "") + step.action
        if step.action == "refuse":
            h.result.error = step.why
            continue
        if step.action in ("keep",):
            continue
        changed = True
        try:
            if step.action.startswith("leave-"):
                swarm.swarm_leave(h.client, force=True)
            if step.action.endswith("init"):
                swarm.swarm_init(h.client, h.result.addr, local=False)
                manager, ours = h, swarm.swarm_membership(h.client)["cluster_id"]
                record = {"swarm_id": ours, "managers": managers, "hosts": []}
            else:
                if manager is None:
                    raise SwarmmlError("no manager of this swarm answers to join")
                tokens = swarm.join_tokens(manager.client)  # in this process's memory only
                swarm.swarm_join(h.client, manager.result.addr, tokens["Manager" if step.role == "manager"
                                                                         else "Worker"], h.result.addr)
            h.state = rh.SwarmState(**swarm.swarm_membership(h.client))
        except SwarmmlError as exc:
            h.result.error = str(exc)

    if manager is not None:
        changed |= _label_nodes(name, manager, [h for h in ok.values() if not h.result.error], wanted_labels)
        record["hosts"] = _merged_hosts(record.get("hosts", []), [h for h in ok.values() if not h.result.error])
        known = record.get("labels", {})
        record.update(swarm_id=ours, managers=managers,
                      labels={h: sorted(set(known.get(h, [])) | set(wanted_labels.get(h, {})))
                              for h in set(known) | set(wanted_labels)})
        _ssh_config(name, sorted({h["host"] for h in record["hosts"]}), identity or record.get("identity"))
        if identity:
            record["identity"] = os.path.abspath(identity)
        ctx = _write_record(name, record)
        _wait_ready(manager, [h for h in ok.values() if h.state and h.state.node_id and not h.result.error])
    else:
        ctx = None
        if identity and not record:
            _drop_ssh_config(name)  # nothing was formed: leave ~/.ssh/config as it was
    for h in hosts:
        if h.client is not None:
            h.client.close()
    return CreateResult(name, ctx, [h.result for h in hosts], changed, time.monotonic() - started)


def _recorded_manager(record: dict, given: set[str]) -> _Host | None:
    """A manager of the recorded swarm among the hosts this run was not given, reached over SSH, or None."""
    for r in record.get("hosts", []):
        if r.get("role") != "manager" or r.get("name") in given:
            continue
        h = _Host(rh.HostSpec(r["user"], r["host"], int(r.get("port", 22))), HostResult(r["name"], "manager",
                                                                                       addr=r.get("addr")))
        try:
            h.client = engine.connect(h.spec.url, timeout=60)
            h.state = rh.SwarmState(**swarm.swarm_membership(h.client))
        except SwarmmlError:
            continue
        if h.state.manager and h.state.cluster_id == record.get("swarm_id"):
            return h
        h.client.close()
    return None


def _label_nodes(name: str, manager: _Host, hosts: list[_Host], wanted: dict) -> bool:
    changed = False
    for h in hosts:
        if h.state and h.state.node_id:
            want = {labels.CLUSTER: name, **wanted.get(h.spec.host, {})}
            changed |= nodes.update_node(manager.client, h.state.node_id, labels=want)
    return changed


def _merged_hosts(known: list[dict], hosts: list[_Host]) -> list[dict]:
    """The record's hosts, in the order they joined: this run's rows replace theirs, new ones go last."""
    rows = [{"name": h.spec.name, "user": h.spec.user, "host": h.spec.host, "port": h.spec.port, "url": h.spec.url,
             "role": "manager" if h.state and h.state.manager else "worker", "addr": h.result.addr,
             "node_id": h.state.node_id if h.state else None} for h in hosts]
    fresh = {r["name"]: r for r in rows}
    kept = [fresh.pop(k["name"], k) for k in known]
    return kept + list(fresh.values())


def _wait_ready(manager: _Host, hosts: list[_Host], timeout: float = 60) -> None:
    want = {h.state.node_id for h in hosts if h.state}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = {n["id"] for n in nodes.swarm_nodes(manager.client) if n["state"] == "ready"}
        if want <= ready:
            return
        time.sleep(0.5)
    for h in hosts:
        if h.state and h.state.node_id not in ready:
            h.result.error = f"joined, but not ready within {timeout:.0f} s (check 2377/tcp, 7946/tcp+udp, 4789/udp)"


# --- destroy ------------------------------------------------------------------------------

@dataclass
class DestroyResult:
    name: str
    hosts: list[HostResult] = field(default_factory=list)
    context_removed: bool = False

    def errors(self) -> list[str]:
        return [f"{h.host}: {h.error}" for h in self.hosts if h.error]


def destroy(name: str, keep_engine: bool = True, show_progress: bool = False) -> DestroyResult:
    """Every host leaves the swarm (workers, then managers, the last one ending it); then the context and
    ssh config block go. keep_engine=False also stops and purges an engine swarmml installed."""
    record = read_record(name)
    if record is None:
        raise NotFound(f"no swarmml cluster {name!r} made with `cluster create` (no context {context_name(name)} "
                       "with swarmml's record)")
    rows = record.get("hosts", [])
    hosts = [_Host(rh.HostSpec(r["user"], r["host"], int(r.get("port", 22))), HostResult(r["name"], r["role"]))
             for r in rows]

    def reach(h, status):
        try:
            status("reaching the engine")
            h.client = engine.connect(h.spec.url, timeout=60)
            h.state = rh.SwarmState(**swarm.swarm_membership(h.client))
            status("ready")
        except SwarmmlError as exc:
            if _has_no_engine(h.spec, record.get("identity")):
                h.result.action = "has no engine (in no swarm)"
                status("ready")
                return
            h.result.error = str(exc)
            status("failed")
    _in_parallel(hosts, reach, "waiting", show_progress)
    live = [h for h in hosts if not h.result.error and h.state and h.state.state != "inactive"]
    managers = {id(h) for h in live if h.state and h.state.manager}
    leader = next((h for h in live if id(h) in managers), None)
    # Managers other than the last are demoted first, so that none leaves a swarm without its quorum.
    if leader:
        for h in live:
            if h is not leader and id(h) in managers and h.state:
                try:
                    nodes.update_node(leader.client, h.state.node_id, role="worker",
                                      remove=[labels.CLUSTER, *record.get("labels", {}).get(h.spec.host, [])])
                except SwarmmlError as exc:
                    h.result.error = str(exc)
    for h in sorted(live, key=lambda h: h is leader):
        if h.result.error:
            continue
        try:
            swarm.swarm_leave(h.client, force=h is leader)
            h.result.action = "left"
        except SwarmmlError as exc:
            h.result.error = str(exc)
    for h in hosts:
        if not h.result.error and not h.result.action:
            h.result.action = "was in no swarm"
    if not keep_engine:
        _in_parallel([h for h in hosts if not h.result.error],
                     lambda h, status: _remove_engine(h, record.get("identity"), status), "waiting", show_progress)
    for h in hosts:
        if h.client is not None:
            h.client.close()
    result = DestroyResult(name, [h.result for h in hosts])
    if not result.errors():
        exposing.remove_context(endpoint.config_dir(os.environ), name)
        _drop_ssh_config(name)
        result.context_removed = True
    return result


def _has_no_engine(spec: rh.HostSpec, identity: str | None) -> bool:
    """Whether the host answers over SSH and has no dockerd at all (so it is in no swarm), rather than
    an engine that can't be reached."""
    try:
        session = Session(spec, identity)
    except SwarmmlError:
        return False
    try:
        code, _, _ = session.run("command -v dockerd >/dev/null || [ -x /usr/sbin/dockerd ]", timeout=30)
        return code != 0
    finally:
        session.close()


# Stops the engine engine-up.sh started (it runs under no init system) and purges the package, only where
# `create` installed it; says which it did.
REMOVE_ENGINE = f"""
if [ ! -e {MARK_DIR}/engine-installed ]; then echo kept; exit 0; fi
pkill -x dockerd
for _ in $(seq 1 30); do pgrep -x dockerd >/dev/null || break; sleep 1; done
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq docker.io >/dev/null
rm -f {MARK_DIR}/engine-installed
echo removed
"""


def _remove_engine(h: _Host, identity: str | None, status) -> None:
    if h.client is not None:
        h.client.close()
        h.client = None
    try:
        status("removing the engine")
        session = Session(h.spec, identity)
        try:
            sudo = "" if h.spec.user == "root" else "sudo -n "
            code, out, err = session.run(f"{sudo}sh -s", REMOVE_ENGINE.encode(), timeout=300)
        finally:
            session.close()
        if code != 0:
            last = (err.strip() or out.strip()).splitlines() or ["no output"]
            raise SwarmmlError(f"removing the engine failed: {last[-1]}")
        h.result.action += ", engine removed" if out.split()[-1:] == ["removed"] else \
            ", engine kept (swarmml did not install it)"
        status("ready")
    except SwarmmlError as exc:
        h.result.error = str(exc)
        status("failed")


# --- doctor --cluster NAME ------------------------------------------------------------------

def doctor(name: str, show_progress: bool = False) -> list[tuple[str, rh.Verdict]]:
    """(host, verdict) for each check on each recorded host: engine and disk, IPVS, Swarm's ports between them."""
    record = read_record(name)
    if record is None:
        raise NotFound(f"no swarmml cluster {name!r} made with `cluster create`")
    rows = record.get("hosts", [])
    peers = [(r["addr"], r["role"]) for r in rows if _is_ip(r.get("addr"))]
    hosts = [_Host(rh.HostSpec(r["user"], r["host"], int(r.get("port", 22))), HostResult(r["name"], r["role"],
                                                                                        addr=r.get("addr")))
             for r in rows]
    found: dict[str, list[rh.Verdict]] = {}

    def check(h, status):
        try:
            status("checking")
            session = Session(h.spec, record.get("identity"))
            try:
                sent = time.time()
                _, out, _ = session.run("sh -s", rh.FACTS_SCRIPT.encode(), timeout=60)
                verdicts = rh.host_verdicts(rh.parse_facts(out, sent, time.time()))
                targets = " ".join(rh.port_targets(peers, h.result.addr or ""))
                _, out, _ = session.run(f"TARGETS='{targets}' bash -s", rh.PORTS_SCRIPT.encode(), timeout=120)
                verdicts += rh.port_verdicts(out)
            finally:
                session.close()
            found[h.result.host] = verdicts
            status("ready")
        except SwarmmlError as exc:
            found[h.result.host] = [rh.Verdict("fail", "ssh", str(exc))]
            status("failed")
    _in_parallel(hosts, check, "waiting", show_progress)
    return [(h.result.host, v) for h in hosts for v in found.get(h.result.host, [])]


def _is_ip(addr) -> bool:
    import ipaddress
    try:
        ipaddress.ip_address(addr)
        return True
    except ValueError:
        return False
