"""Pure: what `swarmml top` shows, computed from two readings of a stack.

A reading (see swarmml/observe/topview.py) is plain data: the stack's services,
tasks and nodes as the engine lists them, the text each replica's /metrics
and the gateway's stats page returned, and the engine's container stats.
Rates are differences between two readings divided by the time between
them; latency quantiles come from the difference of two histograms, as
Prometheus's histogram_quantile(rate(...)) would compute them.
"""
import functools
from dataclasses import dataclass, field

from swarmml.autoscale import status as autoscale_status
from swarmml.metrics_formats import (
    FAILURE_TOTAL,
    IN_FLIGHT,
    REQUEST_SECONDS,
    SUCCESS_TOTAL,
    BadMetrics,
    bucket_bound,
    quantile,
    read_haproxy_stats,
    read_prometheus_text,
)


@dataclass
class Counters:
    """One replica's model-service counters at one moment, summed over its models."""

    ok: float = 0.0
    failed: float = 0.0
    in_flight: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count

    @property
    def requests(self) -> float:
        return self.ok + self.failed


def counters(text: str) -> Counters | None:
    """A /metrics page -> Counters, None when the page is not the model service's or not Prometheus text
    at all: top shows '-' for that replica and goes on with the others."""
    c, seen = Counters(), False
    try:
        for name, labels, value in read_prometheus_text(text):
            if name == SUCCESS_TOTAL:
                c.ok += value
                seen = True
            elif name == FAILURE_TOTAL:
                c.failed += value
            elif name == IN_FLIGHT:
                c.in_flight += value
            elif name == REQUEST_SECONDS + "_bucket":
                le = bucket_bound(labels)
                c.buckets[le] = c.buckets.get(le, 0.0) + value
    except BadMetrics:
        return None
    return c if seen else None


def rates(prev: Counters | None, cur: Counters, dt: float) -> dict:
    """Per-second rates and latency quantiles between two readings of one replica."""
    if prev is None or dt <= 0 or cur.requests < prev.requests:
        # First sight of the replica, or its counters restarted: no rate yet.
        return {"requests_per_s": None, "errors_per_s": None, "p50_ms": None, "p99_ms": None,
                "in_flight": cur.in_flight}
    delta = {le: cur.buckets.get(le, 0.0) - prev.buckets.get(le, 0.0) for le in cur.buckets}
    p50, p99 = quantile(0.5, delta), quantile(0.99, delta)
    return {"requests_per_s": (cur.requests - prev.requests) / dt,
            "errors_per_s": max(0.0, cur.failed - prev.failed) / dt,
            "p50_ms": None if p50 is None else p50 * 1000, "p99_ms": None if p99 is None else p99 * 1000,
            "in_flight": cur.in_flight}


def gateway_servers(rows: list[dict[str, str]]) -> dict[str, dict]:
    """The gateway's view of each backend server, keyed by its IP: status, sessions now, requests so far."""
    out = {}
    for r in rows:
        if r.get("svname") in ("FRONTEND", "BACKEND") or not r.get("addr"):
            continue
        ip = r["addr"].rsplit(":", 1)[0]
        out[ip] = {"backend": r.get("pxname"), "server": r.get("svname"), "status": r.get("status"),
                   "sessions": _int(r.get("scur")), "queued": _int(r.get("qcur")),
                   "requests": _int(r.get("req_tot")) or _int(r.get("stot")), "http_5xx": _int(r.get("hrsp_5xx"))}
    return out


def gateway_frontends(rows: list[dict[str, str]]) -> list[dict]:
    return [{"frontend": r.get("pxname"), "requests_per_s": _int(r.get("req_rate")),
             "sessions": _int(r.get("scur")), "http_5xx": _int(r.get("hrsp_5xx"))}
            for r in rows if r.get("svname") == "FRONTEND" and r.get("pxname") != "stats"]


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except (TypeError, ValueError):
        return 0


def cpu_cores(prev: dict | None, cur: dict | None) -> float | None:
    """CPU used between two container stats readings, in cores (1.0 = one core busy)."""
    if not prev or not cur:
        return None
    try:
        used = cur["cpu_stats"]["cpu_usage"]["total_usage"] - prev["cpu_stats"]["cpu_usage"]["total_usage"]
        dt = cur["swarmml_read_at"] - prev["swarmml_read_at"]
    except (KeyError, TypeError):
        return None
    return used / 1e9 / dt if dt > 0 and used >= 0 else None


def memory_bytes(stats: dict | None) -> int | None:
    """Memory in use by a container, without its page cache (as `docker stats` shows it)."""
    mem = (stats or {}).get("memory_stats") or {}
    if "usage" not in mem:
        return None
    detail = mem.get("stats") or {}
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    return max(0, mem["usage"] - cache)


def snapshot(prev: dict | None, cur: dict) -> dict:
    """Two readings (see topview.read) -> what top shows: services, their replicas, nodes, the gateway."""
    prev = prev or {}
    dt = cur["time"] - prev["time"] if prev else 0.0
    hosts = {n["id"]: n["hostname"] for n in cur["nodes"]}
    gateways = [t["id"] for t in cur["tasks"] if _gateway_rows(cur, t["id"])]
    servers = {}
    for task_id in gateways:
        servers.update(gateway_servers(_gateway_rows(cur, task_id)))
    replicas_by_service: dict[str, list] = {}
    for t in sorted(cur["tasks"], key=lambda t: (t["service"], t["slot"] or 0, t["node_id"])):
        if t["state"] != "running":
            continue
        now_c = _counters(cur, t["id"])
        page_t = _page_time(cur, t["id"], cur["time"])
        before = _counters(prev, t["id"]) if prev else None
        r = {"task": t["id"], "replica": str(t["slot"]) if t["slot"] else hosts.get(t["node_id"], "?"),
             "node": hosts.get(t["node_id"], t["node_id"][:12]), "ip": t.get("ip")}
        if now_c is not None and t["id"] not in gateways:
            r.update(rates(before, now_c, page_t - _page_time(prev, t["id"], prev.get("time", 0.0))))
        r["cpu_cores"] = cpu_cores((prev.get("stats") or {}).get(t["id"]), cur["stats"].get(t["id"]))
        r["memory_bytes"] = memory_bytes(cur["stats"].get(t["id"]))
        if t.get("ip") in servers:
            r["gateway"] = servers[t["ip"]]
        replicas_by_service.setdefault(t["service"], []).append(r)
    services = []
    for s in sorted(cur["services"], key=lambda s: s["name"]):
        reps = replicas_by_service.get(s["name"], [])
        per_node: dict[str, int] = {}
        for r in reps:
            per_node[r["node"]] = per_node.get(r["node"], 0) + 1
        services.append({
            "name": s["name"], "running": len(reps), "desired": s["desired"],
            "per_node": dict(sorted(per_node.items())),
            "requests_per_s": _sum(r.get("requests_per_s") for r in reps),
            "errors_per_s": _sum(r.get("errors_per_s") for r in reps),
            "in_flight": _sum(r.get("in_flight") for r in reps),
            "p50_ms": _service_quantile(0.5, prev, cur, reps), "p99_ms": _service_quantile(0.99, prev, cur, reps),
            "rollout": s.get("rollout"), "autoscale": s.get("autoscale"), "replicas": reps})
    nodes = []
    for n in sorted(cur["nodes"], key=lambda n: n["hostname"]):
        reps = [r for s in services for r in s["replicas"] if r["node"] == n["hostname"]]
        nodes.append({"node": n["hostname"], "state": n["state"], "tasks": len(reps),
                      "cpu_cores": _sum(r["cpu_cores"] for r in reps), "cpus": n["nano_cpus"] / 1e9,
                      "memory_bytes": _sum(r["memory_bytes"] for r in reps), "memory_total_bytes": n["memory_bytes"]})
    frontends = [f for task_id in gateways for f in gateway_frontends(_gateway_rows(cur, task_id))]
    return {"stack": cur["stack"], "time": cur["time"], "interval_s": dt if prev else None,
            "services": services, "nodes": nodes, "gateway": frontends, "problems": cur.get("problems", [])}


def _page(reading: dict, task_id: str, kind: str) -> dict:
    return ((reading.get("pages") or {}).get(task_id) or {}).get(kind) or {}


def _page_time(reading: dict, task_id: str, default: float) -> float:
    return _page(reading, task_id, "metrics").get("t", default)


def _counters(reading: dict, task_id: str) -> Counters | None:
    page = _page(reading, task_id, "metrics")
    return _read_counters(page["body"]) if page.get("status") == 200 else None


@functools.lru_cache(maxsize=512)
def _read_counters(text: str) -> Counters | None:
    # A page is read up to four times over two refreshes (as the newer reading, then as the older; per
    # replica, then per service) and prometheus_client's parser takes ~10 ms a page: read it once.
    # The Counters are shared, and nothing here changes them.
    return counters(text)


def _gateway_rows(reading: dict, task_id: str) -> list[dict]:
    page = _page(reading, task_id, "stats")
    if page.get("status") != 200:
        return []
    try:
        return read_haproxy_stats(page["body"])
    except BadMetrics:  # not a gateway's page, or a broken one: no gateway columns for it
        return []


def _service_quantile(q: float, prev: dict, cur: dict, reps: list[dict]) -> float | None:
    """A quantile over all of a service's replicas: their histogram differences added up."""
    total: dict[float, float] = {}
    for r in reps:
        if "requests_per_s" not in r:  # not a model-service replica (the gateway forwards /metrics)
            continue
        a, b = _counters(prev, r["task"]) if prev else None, _counters(cur, r["task"])
        if a is None or b is None or b.requests < a.requests:
            continue
        for le, n in b.buckets.items():
            total[le] = total.get(le, 0.0) + n - a.buckets.get(le, 0.0)
    v = quantile(q, total)
    return None if v is None else v * 1000


def _sum(values) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


# --- for people ----------------------------------------------------------------------------------

def _num(v: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if v is None else fmt.format(v)


def _mib(v: float | None) -> str:
    return "-" if v is None else f"{v / 2**20:.0f}Mi"


def autoscale_line(a: dict) -> str:
    """One line of an autoscaled service's state, in the words of `swarmml autoscale status`'s table."""
    row = autoscale_status.rows({"services": [a]})[0]
    line = f"  autoscale {row['min_max']}" + (f" (target {row['target']})" if row["target"] else "")
    line += f": {a['controller']}" + (f", last change {row['last_change']}" if row["last_change"] else "")
    return line + f"; {row['why']}" if row["why"] else line


def render(snap: dict):
    """A snapshot -> rich renderables: one table per service, one for nodes, the gateway and rollouts."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list = []
    when = f"every {snap['interval_s']:.1f} s" if snap.get("interval_s") else "first reading"
    parts.append(Text(f"stack {snap['stack']}  ·  {when}  ·  Ctrl-C to quit", style="bold"))
    for s in snap["services"]:
        spread = " ".join(f"{n}:{c}" for n, c in s["per_node"].items()) or "-"
        head = (f"{s['name']}  {s['running']}/{s['desired'] if s['desired'] is not None else '-'} running  "
                f"[{spread}]  {_num(s['requests_per_s'])} req/s  {_num(s['errors_per_s'], '{:.2f}')} err/s  "
                f"p50 {_num(s['p50_ms'])} ms  p99 {_num(s['p99_ms'])} ms  in-flight {_num(s['in_flight'], '{:.0f}')}")
        if s.get("rollout") and s["rollout"].get("state") not in ("completed", "rollback_completed"):
            head += f"  rollout: {s['rollout']['state']}" + (f" ({s['rollout']['message']})"
                                                            if s["rollout"].get("message") else "")
        parts.append(Text(head, style="bold"))  # a table title would be cut to the table's width
        if s.get("autoscale"):
            parts.append(Text(autoscale_line(s["autoscale"])))
        t = Table(show_edge=False, header_style="bold", expand=False)
        for col in ("replica", "node", "req/s", "in-flight", "p50 ms", "p99 ms", "err/s", "cpu", "mem", "gateway"):
            t.add_column(col, justify="left" if col in ("replica", "node", "gateway") else "right")
        for r in s["replicas"]:
            gw = r.get("gateway")
            t.add_row(r["replica"], r["node"], _num(r.get("requests_per_s")), _num(r.get("in_flight"), "{:.0f}"),
                      _num(r.get("p50_ms")), _num(r.get("p99_ms")), _num(r.get("errors_per_s"), "{:.2f}"),
                      _num(None if r.get("cpu_cores") is None else r["cpu_cores"] * 100, "{:.0f}%"),
                      _mib(r.get("memory_bytes")), f"{gw['status']} {gw['sessions']} conn" if gw else "")
        parts.append(t)
    parts.append(Text("nodes", style="bold"))
    nt = Table(show_edge=False, header_style="bold")
    for col in ("node", "state", "tasks", "cpu", "memory"):
        nt.add_column(col, justify="left" if col in ("node", "state") else "right")
    for n in snap["nodes"]:
        cpu = _num(None if n["cpu_cores"] is None else n["cpu_cores"] * 100, "{:.0f}%")
        nt.add_row(n["node"], n["state"], str(n["tasks"]), f"{cpu} of {n['cpus']:.0f} cores",
                   f"{_mib(n['memory_bytes'])} of {_mib(n['memory_total_bytes'])}")
    parts.append(nt)
    for f in snap["gateway"]:
        parts.append(Text(f"gateway {f['frontend']}: {f['requests_per_s']} req/s, {f['sessions']} connections, "
                          f"{f['http_5xx']} 5xx so far"))
    for p in snap.get("problems", []):
        parts.append(Text(p, style="yellow"))
    return Group(*parts)
