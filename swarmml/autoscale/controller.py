"""The autoscaler's loop: read the swarm, scrape the replicas, decide, scale. The I/O around decide.py.

Each tick:
1. take or renew the lease (one controller per swarm; see lease.py) and
   publish the last tick's status in it;
2. list the services that carry io.swarmml.autoscale.min, and for each
   read its policy, its tasks and whether a rolling update runs;
3. scrape every running task at its overlay address
   (http://ADDRESS:8080/metrics), all at once, so that the controller must
   share a network with the service (the in-cluster service does);
4. decide (pure) and, holding the lease and not in dry-run, scale through
   swarmml.ops.scale, the same call as `swarmml scale`: Swarm stops a removed
   replica with SIGTERM and its stop_grace_period, the model service drains
   its requests in flight, and the gateway retries elsewhere, so a scale-down
   loses no request.

Run it in the cluster with `python -m swarmml.autoscale.controller`
(what `swarmml autoscale install` deploys), or in the foreground with
`swarmml autoscale SERVICE --dry-run`.
"""
from __future__ import annotations

import os
import signal as signals
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from swarmml.autoscale import lease as leases
from swarmml.autoscale.decide import Decision, Observation, State, clock, decide
from swarmml.stack.autoscale_policy import PREFIX, Policy, parse, with_overrides
from swarmml.autoscale.signals import (
    BadMetrics,
    Scrape,
    Signal,
    arrival_rate,
    read_haproxy_backend,
    read_query_answer,
    read_scrape,
    replica_signal,
)
from swarmml import ops
from swarmml.engine import configs as engine_configs
from swarmml.engine import http as engine_http
from swarmml.engine import nodes as engine_nodes
from swarmml.engine import services as engine_services
from swarmml.engine import swarm as engine_swarm
from swarmml.engine import tasks as engine_tasks
from swarmml.engine import connect
from swarmml.errors import SwarmmlError
from swarmml.ops.placement import ACTIVE, UNPLACEABLE, is_running, placement, task_name

POLICY_LABEL = PREFIX + "min"
UPDATING = {"updating": "updating", "rollback_started": "rolling back", "paused": "update paused",
            "rollback_paused": "rollback paused"}
SHOWN_DECISIONS = 5


# --- pure helpers over the engine's JSON ------------------------------------------------

def running_tasks(tasks: list[dict]) -> list[dict]:
    return [t for t in tasks if is_running(t)]


def task_address(task: dict) -> str | None:
    """The task's IPv4 address on its first network that is not the ingress network."""
    for att in task.get("NetworksAttachments") or []:
        net = att.get("Network") or {}
        if (net.get("Spec") or {}).get("Ingress") or (net.get("Spec") or {}).get("Name") == "ingress":
            continue
        for addr in att.get("Addresses") or []:
            ip = addr.split("/", 1)[0]
            if ip and ":" not in ip:
                return ip
    return None


def update_state(service: dict) -> str | None:
    """'updating' (or rolling back, paused) while a rolling update of the service is not over, else None."""
    return UPDATING.get((service.get("UpdateStatus") or {}).get("State"))


def replicas_of(service: dict) -> int:
    return ((service["Spec"].get("Mode") or {}).get("Replicated") or {}).get("Replicas", 1)


@dataclass
class ServiceStatus:
    """What status shows of one service."""

    service: str
    replicas: int
    policy: dict = field(default_factory=dict)
    signal: dict = field(default_factory=dict)
    decision: dict = field(default_factory=dict)
    decisions: list = field(default_factory=list)  # the last changes and new reasons, oldest first
    error: str | None = None

    def to_json(self) -> dict:
        return dict(self.__dict__)


def compact(decision: Decision) -> dict:
    d = decision.to_json()
    return {k: d[k] for k in ("time", "at", "action", "current", "desired", "recommended", "mode", "reason")}


# --- the loop --------------------------------------------------------------------------

class Controller:
    """Decisions for every autoscaled service of a swarm (or one, for the foreground command)."""

    def __init__(self, client, holder: str | None = None, only: str | None = None,
                 overrides: dict | None = None, dry_run: bool = False, use_lease: bool = True,
                 clock_fn=time.time, fetch=engine_http.http_get, scaler=None):
        self.client = client
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}"
        self.only, self.overrides, self.dry_run = only, overrides or {}, dry_run
        self.use_lease = use_lease and not dry_run
        self.now, self.fetch = clock_fn, fetch
        self.scaler = scaler or _scale
        self.states: dict[str, State] = {}
        self.scrapes: dict[str, Scrape] = {}  # task ID -> its last scrape
        self.gateway_counts: dict[str, dict[str, tuple[float, float]]] = {}  # service -> gateway task -> (at, req_tot)
        self.status: dict[str, ServiceStatus] = {}
        self.holding = not self.use_lease
        self.lease_note = ""
        self._pool = ThreadPoolExecutor(max_workers=16)
        self.stopping = threading.Event()

    # one tick ---------------------------------------------------------------------------
    def tick(self) -> dict[str, Decision]:
        now = self.now()
        if self.use_lease:
            self.holding, self.lease_note = self._renew(now)
        out = {}
        services = self._services()
        nodes = engine_nodes.nodes(self.client) if services else []
        seen_tasks = set()
        for svc in services:
            name = svc["Spec"]["Name"]
            try:
                policy = self._policy(svc)
            except SwarmmlError as exc:
                self.status[name] = ServiceStatus(name, replicas_of(svc), error=str(exc))
                continue
            tasks = engine_tasks.tasks(self.client, svc["ID"])
            live = running_tasks(tasks)
            seen_tasks |= {t["ID"] for t in live}
            signal = self._signal(svc, policy, live, now)
            where = placement(svc, tasks, nodes)
            starting = sum(1 for t in tasks if t.get("DesiredState") == "running"
                           and t["Status"]["State"] in ACTIVE and UNPLACEABLE not in (t["Status"].get("Err") or ""))
            obs = Observation(now, replicas_of(svc), signal, update_state(svc), where.unplaceable, starting)
            state = self.states.setdefault(name, State())
            d = decide(policy, state, obs)
            runs = d.current
            if d.action != "hold":
                if self.dry_run:
                    d.reason = "dry run, would " + d.reason
                elif not self.holding:
                    d.reason = f"standby ({self.lease_note}), would " + d.reason
                elif self.stopping.is_set():
                    # Told to stop mid-tick (SIGTERM): what it read may already be stale; the next holder decides.
                    d.reason = "stopping, would " + d.reason
                else:
                    try:
                        self.scaler(self.client, name, d.desired)
                        runs = d.desired
                    except SwarmmlError as exc:
                        d.reason = f"scaling to {d.desired} failed: {exc}"
                        d.desired = d.current
            out[name] = d
            self.status[name] = ServiceStatus(
                name, runs, policy.labels, _signal_summary(signal), compact(d),
                [compact(x) for x in list(state.decisions)[-SHOWN_DECISIONS:]])
        self.scrapes = {k: v for k, v in self.scrapes.items() if k in seen_tasks}
        names = {s["Spec"]["Name"] for s in services}
        for gone in set(self.status) - names:
            self.status.pop(gone)
            self.states.pop(gone, None)
        return out

    def status_json(self) -> dict:
        return {"holder": self.holder, "at": self.now(), "dry_run": self.dry_run,
                "services": {n: s.to_json() for n, s in sorted(self.status.items())}}

    def run(self, stop: threading.Event | None = None, interval: float | None = None, show=None,
            ticks: int | None = None) -> None:
        """Tick until stop is set (or `ticks` ticks); show(decisions) after each tick."""
        stop = stop or self.stopping
        self.stopping = stop
        n = 0
        while not stop.is_set():
            started = time.monotonic()
            decisions = self.tick()
            if show:
                show(self, decisions)
            n += 1
            if ticks is not None and n >= ticks:
                break
            wait = interval if interval is not None else self._interval()
            stop.wait(max(0.0, wait - (time.monotonic() - started)))
        if self.use_lease and self.holding:
            self._release()

    # pieces -----------------------------------------------------------------------------
    def _services(self) -> list[dict]:
        if self.only:
            svc = engine_services.service(self.client, self.only)
            return [svc]
        return engine_services.services(self.client, label=POLICY_LABEL)

    def _policy(self, svc: dict) -> Policy:
        where = f"service {svc['Spec']['Name']}"
        labels = svc["Spec"].get("Labels") or {}
        if self.overrides:
            base = parse(labels, where) if any(k.startswith(PREFIX) for k in labels) else None
            return with_overrides(base, self.overrides.get("min"), self.overrides.get("max"),
                                  self.overrides.get("target_inflight"), where)
        policy = parse(labels, where)
        if policy is None:
            raise SwarmmlError(f"{where} has no {PREFIX}* labels")
        return policy

    def _interval(self) -> float:
        values = []
        for svc in self.status.values():
            text = svc.policy.get(PREFIX + "interval")
            if text:
                try:
                    values.append(parse({PREFIX + "min": "1", PREFIX + "max": "1", PREFIX + "target-inflight": "1",
                                         PREFIX + "interval": text}).interval_s)
                except SwarmmlError:
                    pass
        return min(values) if values else 2.0

    def _signal(self, svc: dict, policy: Policy, live: list[dict], now: float) -> Signal:
        def one(task):
            name = task_name(svc, task)
            ip = task_address(task)
            if ip is None:
                return task, name, None, "no overlay address"
            # A busy replica answers /metrics behind its queue of requests: wait up to about a tick for it.
            text, error = self.fetch(f"http://{ip}:{policy.metrics_port}{policy.metrics_path}",
                                     timeout=min(3.0, max(1.0, policy.interval_s * 1.25)))
            if text is None:
                return task, name, None, error
            try:
                return task, name, read_scrape(text, self.now(), policy.model), None
            except BadMetrics as exc:
                return task, name, None, str(exc)

        sig = Signal()
        wanted = [m for m in policy.targets if m != "query"]
        if wanted:
            for task, name, scrape, error in self._pool.map(one, live):
                before = self.scrapes.get(task["ID"])
                sig.replicas.append(replica_signal(name, scrape, before, error))
                if scrape is not None:
                    self.scrapes[task["ID"]] = scrape
        else:
            sig.replicas = [replica_signal(task_name(svc, t), None, error="not scraped: query metric")
                            for t in live]
        if policy.gateway:
            sig.gateway_inflight, sig.gateway_rps, sig.gateway_error = self._gateway(svc, policy)
        if policy.query and policy.metrics_url:
            body, error = self.fetch(engine_http.query_url(policy.metrics_url, policy.query))
            if body is None:
                sig.query_error = error
            else:
                try:
                    sig.query_value = read_query_answer(body)
                except BadMetrics as exc:
                    sig.query_error = str(exc)
        return sig

    def _gateway(self, svc: dict, policy: Policy) -> tuple[float | None, float | None, str | None]:
        """(requests in flight through every task of the gateway to this service's backend, the rate at
        which requests arrive there, or the error)."""
        spec = svc["Spec"]
        ns = (spec.get("Labels") or {}).get(engine_swarm.NAMESPACE_LABEL)
        backend = spec["Name"][len(ns) + 1:] if ns and spec["Name"].startswith(ns + "_") else spec["Name"]
        gw = None
        for name in ([f"{ns}_{policy.gateway}"] if ns else []) + [policy.gateway]:
            try:
                gw = engine_services.service(self.client, name)
                break
            except SwarmmlError:
                continue
        if gw is None:
            return None, None, f"gateway service {policy.gateway} not found"
        total = 0.0
        received: dict[str, tuple[float, float]] = {}
        live = running_tasks(engine_tasks.tasks(self.client, gw["ID"]))
        if not live:
            return None, None, f"gateway {gw['Spec']['Name']} runs no task"
        for task in live:
            ip = task_address(task)
            if ip is None:
                return None, None, f"gateway task {task_name(gw, task)} has no overlay address"
            text, error = self.fetch(f"http://{ip}:{policy.gateway_port}/stats;csv", timeout=1.0)
            if text is None:
                return None, None, error
            try:
                inflight, count = read_haproxy_backend(text, backend)
            except BadMetrics as exc:
                return None, None, f"gateway {gw['Spec']['Name']}: {exc}"
            total += inflight
            if count is not None:
                received[task["ID"]] = (self.now(), count)
        before = self.gateway_counts.get(spec["Name"], {})
        self.gateway_counts[spec["Name"]] = received
        # A gateway that did not answer last time has no rate yet: the others' alone would read low.
        rate = arrival_rate(received, before) if set(received) <= set(before) else None
        return total, rate, None

    def _renew(self, now: float) -> tuple[bool, str]:
        status = self.status_json() if self.status else None
        labels = leases.labels_for(self.holder, now, status)
        try:
            found = engine_configs.lease(self.client, leases.LEASE_NAME)
            if found is None:
                engine_configs.create_lease(self.client, leases.LEASE_NAME, labels)
                return True, ""
            cid, version, have = found
            ok, why = leases.may_take(have, self.holder, now)
            if not ok:
                return False, why
            engine_configs.write_lease(self.client, cid, version, leases.LEASE_NAME, labels)
            return True, ""
        except engine_configs.LeaseLost as exc:
            return False, str(exc)

    def _release(self) -> None:
        """Let a successor take over at once: expire our lease (keep the status for `autoscale status`)."""
        try:
            found = engine_configs.lease(self.client, leases.LEASE_NAME)
            if found and leases.read(found[2]).holder == self.holder:
                labels = leases.labels_for(self.holder, self.now(), self.status_json(), ttl=0)
                engine_configs.write_lease(self.client, found[0], found[1], leases.LEASE_NAME, labels)
        except SwarmmlError:
            pass


def _signal_summary(signal: Signal) -> dict:
    out = signal.to_json()
    out["per_replica"] = [{k: r[k] for k in ("task", "known", "in_flight", "rps", "p95_ms", "error")}
                          for r in out["per_replica"]]
    return out


def _scale(client, name: str, replicas: int) -> None:
    ops.scale(client, {name: replicas}, detach=True, show=False)


# An unchanged hold is logged again this often: the log then shows, at any moment, that the controller runs
# and why it holds, without a line per tick (a tick is 2 s).
HEARTBEAT_S = 30.0


class DecisionLog:
    """Which lines the controller's log shows: each scale change, each new reason to hold (the words of
    `swarmml autoscale status`), an unchanged hold every HEARTBEAT_S, and errors and standby when they change.
    Pure: the caller prints what lines() returns."""

    def __init__(self, every_s: float = HEARTBEAT_S):
        self.every_s = every_s
        self.shown: dict[str, tuple[str, float]] = {}  # what -> (its gist, when last shown)

    def _due(self, key: str, gist: str, now: float) -> bool:
        last = self.shown.get(key)
        if last is None or last[0] != gist or now - last[1] >= self.every_s:
            self.shown[key] = (gist, now)
            return True
        return False

    def lines(self, decisions: dict[str, Decision], errors: dict[str, str], standby: str | None,
              now: float) -> list[str]:
        out = []
        for name, d in sorted(decisions.items()):
            gist = f"{d.action} {d.desired} " + " ".join(d.reason.split()[:2])
            if d.action != "hold":
                self.shown[name] = (gist, now)
                out.append(line(d, name))
            elif self._due(name, gist, now):
                out.append(line(d, name))
        for name, error in sorted(errors.items()):
            if self._due(name, "error " + error, now):
                out.append(f"{clock(now)} {name} error {error}")
        if standby is not None and self._due(" standby", standby, now):
            out.append(f"{clock(now)} standby: {standby}")
        if not decisions and not errors and self._due(" idle", "", now):
            out.append(f"{clock(now)} no service carries {POLICY_LABEL}: nothing to scale")
        return out


def line(decision: Decision, name: str) -> str:
    """One line per decision for the foreground command and the service's log."""
    arrow = f"{decision.current} -> {decision.desired}" if decision.action != "hold" else f"{decision.current}"
    return f"{clock(decision.at)} {name} {decision.action:<4} {arrow:<8} {decision.reason}"


def main(argv: list[str] | None = None) -> int:
    """The in-cluster entry point: the docker socket of the manager it runs on, until SIGTERM."""
    client = connect(os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock")
    holder = os.environ.get("SWARMML_AUTOSCALE_HOLDER") or None
    ctl = Controller(client, holder=holder)
    stop = threading.Event()
    signals.signal(signals.SIGTERM, lambda *_: stop.set())
    log = DecisionLog()

    def show(c, decisions):
        errors = {n: st.error for n, st in c.status.items() if st.error}
        for text in log.lines(decisions, errors, None if c.holding else c.lease_note, c.now()):
            print(text, flush=True)

    print(f"swarmml autoscaler {ctl.holder} started", flush=True)
    try:
        ctl.run(stop, show=show)
    except SwarmmlError as exc:
        print(f"swarmml autoscaler: error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
