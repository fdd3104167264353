"""`swarmml verify`: orchestrate the checks, the scaling curve and the node-loss drill."""
import copy
import json
import time

from swarmml import converge, ops, placement, services, specs
from swarmml.console import progress
from swarmml.engine import swarm as engine
from swarmml.errors import SwarmmlError, UsageError
from swarmml.loadgen import Background, run as run_load
from swarmml.verify import checks, curve

GOLDEN_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.0, 3.4, 1.5, 0.2],
               [6.4, 3.2, 5.3, 2.3]]
ONE_ROW = [5.9, 3.0, 5.1, 1.8]


def infer_body(rows):
    """An infer request for these rows; several rows also ask for predict_proba (golden checks)."""
    body = {"inputs": [{"name": "input-0", "shape": [len(rows), 4], "datatype": "FP64", "data": rows}]}
    if len(rows) > 1:
        body["outputs"] = [{"name": "predict"}, {"name": "predict_proba"}]
    return json.dumps(body)


def verify(client, service="predictor", stack=None, steps=(1, 2, 4, 6), cpus=0.25, model="iris-rf", duration=10.0,
           connections=None, rate=None, min_efficiency=0.8, drill=None, cluster=None, gateway="gateway",
           batching="off", show=True):
    if any(s < 1 for s in steps):
        raise UsageError("--steps: replica counts must be at least 1")
    if drill not in (None, "node-loss"):
        raise UsageError(f"--drill: expected node-loss, got {drill!r}")
    svc = services.find(client, service, stack)
    if specs.is_global(svc["Spec"]):
        raise UsageError(f"service {svc['Spec']['Name']} is global; verify needs a replicated service")
    ns = (svc["Spec"].get("Labels") or {}).get("com.docker.stack.namespace")
    base_url = services.url(client, gateway, ns)
    infer_url = f"{base_url}/v2/models/{model}/infer"
    original = copy.deepcopy(svc["Spec"])
    name = svc["Spec"]["Name"]
    nodes = engine.nodes(client)
    report = {"service": name, "gateway": base_url, "ok": True, "checks": [], "steps": [], "problems": [],
              "cluster": {"nodes": len(nodes)},
              "settings": {"cpus": cpus, "model": model, "duration_s": duration, "batching": batching,
                           "rate": rate, "min_efficiency": min_efficiency, "steps": list(steps)}}

    with progress() if show else _Quiet() as bar:
        phase = bar.add_task("checks", total=3, status="")
        report["checks"] = [c.to_dict() for c in health_checks(client, name, infer_url)]
        bar.update(phase, completed=3, status="done")
        if steps:
            try:
                report["steps"] = scaling_curve(client, name, infer_url, steps, cpus, duration, connections, rate,
                                                batching, bar)
            finally:
                restore(client, name, original)
            ok, problems = curve.curve_check(report["steps"], min_efficiency)
            report["problems"] += problems
        if drill == "node-loss":
            report["drill"] = node_loss_drill(client, name, gateway, ns, infer_url, cluster, bar)
            if report["drill"]["problems"]:
                report["problems"] += report["drill"]["problems"]
    report["problems"] += [f"{c['name']}: {c['detail']}" for c in report["checks"] if not c["ok"]]
    report["ok"] = not report["problems"]
    return report


class _Quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *a, **k):
        return 0

    def update(self, *a, **k):
        pass


def _running(client, name):
    svc = engine.service(client, name)
    tasks = engine.tasks(client, [svc["ID"]], desired_running=True)
    return svc, tasks, engine.nodes(client)


def health_checks(client, name, infer_url):
    svc, tasks, nodes = _running(client, name)
    place = placement.placement(svc, tasks, nodes)
    eligible = sorted(n["Description"]["Hostname"] for n in nodes
                      if n["Status"]["State"] == "ready" and n["Spec"].get("Availability") == "active")
    pl = svc["Spec"]["TaskTemplate"].get("Placement", {})
    result = [checks.placement_check(place, eligible, pl.get("Constraints") or (), pl.get("MaxReplicas"))]
    containers = [t["Status"]["ContainerStatus"]["ContainerID"] for t in tasks
                  if t["Status"]["State"] == "running" and t["Status"].get("ContainerStatus", {}).get("ContainerID")]
    # Enough golden requests that leastconn reaches every replica several times.
    n = max(50, 20 * len(containers))
    load = run_load(infer_url, infer_body(GOLDEN_ROWS),
                    connections=max(4, len(containers)), duration=30, max_requests=n, keep_bodies=True)
    result.append(checks.answer_check(load.replicas.keys(), containers))
    result.append(checks.golden_check(load.bodies, len(containers)))
    return result


def _fast_update(client, name, mutate):
    """Apply a spec change to all tasks at once (verify's own setup), then wait."""
    svc = engine.service(client, name)
    spec = mutate(copy.deepcopy(svc["Spec"]))
    spec.setdefault("UpdateConfig", {}).update({"Parallelism": 0, "Monitor": 1_000_000_000, "Delay": 0})
    engine.update_service(client, svc["ID"], svc["Version"]["Index"], spec)
    conv = converge.wait(client, [name], timeout=240, show=False)
    if not conv.ok:
        raise SwarmmlError("; ".join(conv.problems))


def restore(client, name, original):
    """Back to the spec verify found, then its own update settings (which restart nothing)."""
    _fast_update(client, name, lambda spec: {**copy.deepcopy(original),
                                               "TaskTemplate": {**copy.deepcopy(original["TaskTemplate"]),
                                                                "ForceUpdate": spec["TaskTemplate"].get("ForceUpdate", 0)}})
    svc = engine.service(client, name)
    final = copy.deepcopy(original)
    final["TaskTemplate"]["ForceUpdate"] = svc["Spec"]["TaskTemplate"].get("ForceUpdate", 0)
    engine.update_service(client, svc["ID"], svc["Version"]["Index"], final)


def _running_containers(client, name):
    svc = engine.service(client, name)
    return {t["Status"]["ContainerStatus"]["ContainerID"][:12]
            for t in engine.tasks(client, [svc["ID"]], desired_running=True)
            if t["Status"]["State"] == "running" and t["Status"].get("ContainerStatus", {}).get("ContainerID")}


def _wait_exact_replicas(client, name, infer_url, body, timeout=60):
    """Until the gateway's answers come from exactly the running replicas.

    After a scale or an update the gateway needs a moment to find new replicas,
    and replaced ones may still answer while they drain: either would skew a step.
    """
    deadline = time.monotonic() + timeout
    seen = expected = set()
    while time.monotonic() < deadline:
        expected = _running_containers(client, name)
        r = run_load(infer_url, body, connections=max(2, 2 * len(expected)), duration=1.0)
        seen = set(r.replicas)
        if seen == expected and r.errors == 0:
            return seen
    raise SwarmmlError(f"the gateway did not settle on the {len(expected)} running replicas within {timeout} s "
                       f"(answers came from {len(seen)}: {sorted(seen - expected)} are not running)")


def scaling_curve(client, name, infer_url, steps, cpus, duration, connections, rate, batching, bar):
    def setup(spec):
        cs = spec["TaskTemplate"]["ContainerSpec"]
        env = [e for e in cs.get("Env", []) if not e.startswith("SWARMML_BATCHING=")]
        cs["Env"] = sorted(env + [f"SWARMML_BATCHING={batching}"])
        spec["TaskTemplate"].setdefault("Resources", {}).setdefault("Limits", {})["NanoCPUs"] = int(cpus * 1e9)
        return specs.with_replicas(spec, steps[0])

    task = bar.add_task("scaling curve", total=len(steps), status="setting CPU limits")
    _fast_update(client, name, setup)
    body = infer_body([ONE_ROW])
    results = []
    for i, n in enumerate(steps):
        bar.update(task, status=f"{n} replicas: scaling")
        ops.scale(client, {name: n}, show=False, timeout=240)
        _wait_exact_replicas(client, name, infer_url, body)
        bar.update(task, status=f"{n} replicas: load for {duration:.0f} s")
        # Enough connections that no replica ever waits for work (a queue of 8 each).
        conns = connections or 8 * n
        # Warm-up so that connection set-up and first-request costs stay out of the numbers.
        run_load(infer_url, body, connections=conns, duration=1.0)
        load = run_load(infer_url, body, connections=conns, duration=duration, rate=rate)
        s = load.summary()
        results.append({"replicas": n, "requests": s["requests"], "requests_per_s": s["requests_per_s"],
                        "p50_ms": s["p50_ms"], "p95_ms": s["p95_ms"], "p99_ms": s["p99_ms"], "errors": s["errors"],
                        "replicas_answering": len(load.replicas), "connections": conns})
        bar.update(task, completed=i + 1, status=f"{n} replicas: {s['requests_per_s']:.0f} req/s")
    return curve.efficiencies(results)


def node_loss_drill(client, name, gateway, ns, infer_url, cluster, bar):
    from swarmml import cluster as clusters
    from swarmml.engine import resolve_target
    cluster = cluster or resolve_target().cluster
    if not cluster:
        raise UsageError("--drill node-loss stops a node container: it needs a local swarmml cluster (--cluster)")
    task = bar.add_task("node-loss drill", total=4, status="choosing a node")
    svc, tasks, nodes = _running(client, name)
    gw = services.find(client, gateway, ns)
    gw_nodes = {t["NodeID"] for t in engine.tasks(client, [gw["ID"]], desired_running=True)}
    host = placement.hostnames(nodes)
    by_node = {}
    for t in tasks:
        if t["Status"]["State"] == "running":
            by_node[t["NodeID"]] = by_node.get(t["NodeID"], 0) + 1
    candidates = [nid for nid in by_node if nid not in gw_nodes
                  and next(n for n in nodes if n["ID"] == nid)["Spec"]["Role"] == "worker"]
    if not candidates:
        raise SwarmmlError("no worker node runs replicas without also running the gateway; nothing to drill")
    victim = max(candidates, key=lambda nid: by_node[nid])
    want = placement.desired_replicas(svc["Spec"])
    problems = []
    with Background(infer_url, infer_body([ONE_ROW]), connections=8, rate=100) as load:
        time.sleep(2)
        bar.update(task, completed=1, status=f"stopping {host[victim]}")
        t0 = time.monotonic()
        clusters.stop_node(cluster, host[victim])
        recovered = None
        while time.monotonic() - t0 < 90:
            s, ts, _ = _running(client, name)
            ok = [t for t in ts if t["Status"]["State"] == "running" and t["NodeID"] != victim]
            if len(ok) >= want:
                recovered = time.monotonic() - t0
                break
            time.sleep(0.5)
        bar.update(task, completed=2, status=f"recovered in {recovered} s; starting {host[victim]}")
        time.sleep(3)
    result = load.result
    clusters.start_node(cluster, host[victim])
    bar.update(task, completed=3, status="rebalancing")
    reb = ops.rebalance(client, name, show=False)
    bar.update(task, completed=4, status="done")
    if recovered is None:
        problems.append(f"desired replicas were not running again within 90 s of stopping {host[victim]}")
    failed_pct = 100.0 * result.errors / max(result.requests, 1)
    moved = [c for c in reb.changes if c[1] == "imbalance"]
    return {"node": host[victim], "requests": result.requests, "failed": result.errors,
            "failed_pct": round(failed_pct, 4), "recovery_s": None if recovered is None else round(recovered, 1),
            "error_kinds": dict(result.error_kinds),
            "rebalance": "; ".join(f"{s} imbalance {n} {old}" for s, _, old, n in moved) +
                         (f", placement after: {reb.placements[0].per_node}" if reb.placements else ""),
            "problems": problems}
