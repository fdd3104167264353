"""`swarmml verify`: the checks, the scaling curve and the node-loss drill, in that order.

Everything the user gave is checked before anything changes. The curve sets a
CPU limit per replica (and the batching mode) on the service and steps its
replica count; whatever happens, the service gets its original spec back.
"""
import contextlib
import copy
import json
import os
import time
from statistics import median
from typing import Any, TypedDict

from swarmml.cluster import local as clusters
from swarmml import ops
from swarmml.ops import converge, placement, rollout, services
from swarmml.console import progress
from swarmml.engine import resolve_target
from swarmml.engine import nodes as engine_nodes
from swarmml.engine import services as engine_services
from swarmml.engine import tasks as engine_tasks
from swarmml.errors import NotFound, SwarmmlError, UsageError
from swarmml.verify.loadgen import LoadResult, connections_for
from swarmml.verify.loadgen import run as run_load
from swarmml.verify import ballast, capacity, checks, curve, fit, method, usage
from swarmml.verify import cpu as verify_io
from swarmml.verify import drill as drills

GOLDEN_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.0, 3.4, 1.5, 0.2],
               [6.4, 3.2, 5.3, 2.3]]
ONE_ROW = [5.9, 3.0, 5.1, 1.8]
WARMUP_WINDOW_S = 2.0
WARMUP_MAX_S = 30.0
# Before the curve, with the base up and no load, the machine's busy cores are read in a few short windows and
# the least taken: the engines still tidy up the replicas the base left behind for a second or two.
REST_WINDOWS, REST_WINDOW_S = 4, 1.5
ANSWER_WAIT_S = 30.0  # how long every replica has to answer through the gateway
BATCHING_ENV = "SWARMML_BATCHING"


def infer_body(rows):
    """An Open Inference Protocol request for these rows; several rows also ask for predict_proba."""
    body = {"inputs": [{"name": "input-0", "shape": [len(rows), 4], "datatype": "FP64", "data": rows}]}
    if len(rows) > 1:
        body["outputs"] = [{"name": "predict"}, {"name": "predict_proba"}]
    return json.dumps(body)


class VerifyReport(TypedDict, total=False):
    """What verify returns and `-o json` prints; a plain dict, so that it is JSON as it stands."""

    ok: bool  # no problems
    problems: list[str]  # one line each: a failed check, a step below its threshold, a suspect curve
    inconclusive: list[str]  # one line each: a step that could not get its CPU, what starved it, what to do
    verdict: str  # pass, fail (problems), or inconclusive (no problems, but steps it could not measure)
    service: str
    gateway: str
    url: str
    checks: list[dict[str, Any]]  # name, ok, detail
    steps: list[dict[str, Any]]  # one per replica count: medians, intervals, E(N) and its verdict
    runs: list[dict[str, Any]]  # every measured run, in the order measured
    noise: dict[str, Any]  # the same step measured twice in a row
    capacity: dict[str, Any]  # with slo: what each step sustains, and the replicas `load` needs
    drill: dict[str, Any]  # with drill
    cluster: dict[str, Any]
    settings: dict[str, Any]


def verify(client, service="predictor", stack=None, steps=None, cpus=0.25, model="iris-rf", duration=10.0,
           connections=None, rate=None, min_efficiency="0.8", drill=None, cluster=None, gateway="gateway",
           batching="off", drill_rate=100.0, max_recovery_s=30.0, max_failed_pct=0.1, repeat=2, slo=None,
           load=None, show=True, node="worker", how="stop", fill_idle=None) -> VerifyReport:
    """Run verify on SERVICE and return the report (a plain dict; report["ok"] says whether it passed).

    steps: the replica counts of the curve; None: fit.DEFAULT_STEPS, less those the cluster's free CPU can't hold
    (each left out is reported in settings.left_out, with why).
    repeat: how many times each step is measured, each between two runs of the base (method.order).
    slo: "p99=250ms": after the curve, what each step sustains under it (open loop);
    load: "200/s" (with slo): how many replicas that needs.
    fill_idle: during the curve, fill the cores each step leaves wholly idle with lowest-priority busy loops
    (verify.ballast); None: when the cluster is a local one, whose nodes run on this machine's cores.
    """
    auto = steps is None
    steps = list(fit.DEFAULT_STEPS if auto else steps)
    if any(not isinstance(s, int) or s < 1 for s in steps):
        raise UsageError(f"--steps: replica counts must be whole numbers of at least 1, got {steps}")
    if len(set(steps)) != len(steps):
        raise UsageError(f"--steps: each replica count once (--repeat measures them again), got {steps}")
    if not isinstance(repeat, int) or repeat < 1:
        raise UsageError(f"--repeat: expected a whole number of at least 1, got {repeat!r}")
    if drill not in (None, "node-loss"):
        raise UsageError(f"--drill: expected node-loss, got {drill!r}")
    if batching not in ("off", "on", "auto"):
        raise UsageError(f"--batching: expected off, on or auto, got {batching!r}")
    thresholds = curve.parse_thresholds(min_efficiency)
    slo_bound = capacity.parse_slo(slo) if slo is not None else None
    for_load = capacity.parse_load(str(load)) if load is not None else None
    if for_load is not None and slo_bound is None:
        raise UsageError("--for asks how many replicas a load needs under an SLO: give --slo too (--slo p99=250ms)")
    if slo_bound is not None and not steps:
        raise UsageError("--slo measures at the --steps replica counts: give some (--steps 1,2,4,6)")
    svc = services.find(client, service, stack)
    name = svc["Spec"]["Name"]
    if placement.desired_replicas(svc["Spec"]) is None:
        raise UsageError(f"service {name} is global; verify steps the replicas of a replicated service")
    ns = services.stack_of(svc)
    try:
        gw = services.find(client, gateway, ns)
    except NotFound:
        raise UsageError(f"no gateway service {gateway!r}{' in stack ' + ns if ns else ''} in front of {name}; "
                         "name it with --gateway") from None
    infer_url = f"{services.url(client, gateway, ns)}/v2/models/{model}/infer"
    _preflight(infer_url, model, name)
    cluster = cluster or resolve_target().cluster
    if fill_idle and not cluster:
        raise UsageError("--fill-idle fills this machine's idle cores: it needs a local swarmml cluster, whose "
                         "nodes run on them (`swarmml --cluster NAME verify ...`)")
    fill_idle = bool(cluster) if fill_idle is None else fill_idle
    if drill == "node-loss":
        if not cluster:
            raise UsageError("--drill node-loss stops a node's container: it needs a local swarmml cluster "
                             "(`swarmml --cluster NAME verify ...`)")
        if how not in drills.HOW:
            raise UsageError(f"--how: expected stop or partition, got {how!r}")
        drills.pick(client, name, gw["Spec"]["Name"], cluster, node, clusters.vip_holder)  # a bad --node stops here

    gateway_limit = ((gw["Spec"]["TaskTemplate"].get("Resources") or {}).get("Limits") or {}).get("NanoCPUs")
    report: VerifyReport = {
              "service": name, "gateway": gw["Spec"]["Name"], "url": infer_url, "ok": True, "checks": [], "steps": [],
              "problems": [], "inconclusive": [],
              "cluster": {"name": cluster, "nodes": len(engine_nodes.nodes(client)), "machine_cores": os.cpu_count()},
              "settings": {"steps": steps, "steps_fitted": auto, "left_out": [], "cpus": cpus, "model": model,
                           "batching": batching,
                           "duration_s": duration, "connections": connections or "8 per replica",
                           "loop": f"open, {rate} requests/s per replica" if rate else "closed",
                           "min_efficiency": {str(k): v for k, v in thresholds.items()},
                           "repeat": repeat, "order": method.order(steps, repeat),
                           "warmup": f"until {method.SETTLE_WINDOWS} windows of {WARMUP_WINDOW_S:g} s agree within "
                                     f"{method.SETTLE_TOLERANCE:.0%} (at most {WARMUP_MAX_S:g} s)",
                           "gateway_cpu_limit": gateway_limit / 1e9 if gateway_limit else None,
                           "fill_idle": fill_idle}}

    with progress(show=show) as bar:
        phase = bar.add_task("checks", total=3, status="placement")
        report["checks"] = [c.to_dict() for c in health_checks(client, name, infer_url,
                                                               lambda s: bar.update(phase, advance=1, status=s))]
        bar.update(phase, completed=3, status="done")
        if steps:
            original = copy.deepcopy(engine_services.service(client, name)["Spec"])
            report["runs"] = []
            try:
                prepare_curve(client, name, infer_url, cpus, batching, min(steps), bar)
                if auto:
                    steps = _fit_steps(client, report, steps, cpus, cluster, repeat)
                with ballast.Ballast() if fill_idle else contextlib.nullcontext() as filler:
                    scaling_curve(client, name, gw["Spec"]["Name"], infer_url, method.order(steps, repeat), cpus,
                                  duration, connections, rate, batching,
                                  gateway_limit / 1e9 if gateway_limit else None, bar, report["runs"], filler)
                if slo_bound is not None and steps:
                    rows = capacity_search(client, name, gw["Spec"]["Name"], infer_url, steps, cpus, slo_bound,
                                           max(5.0, duration / 2), gateway_limit / 1e9 if gateway_limit else None,
                                           bar)
                    report["capacity"] = capacity.answer(rows, slo_bound, for_load)
            except SwarmmlError as exc:
                # The runs so far are real measurements: report them, and why the curve stopped.
                report["problems"].append(f"the curve stopped after {len(report['runs'])} of "
                                          f"{len(method.order(steps, repeat))} runs: {exc}")
            finally:
                task = bar.add_task("restoring the service", total=1, status="")
                try:
                    restore(client, name, original)
                except SwarmmlError as exc:
                    # Minutes of measurements are worth keeping when only the way back failed (an engine
                    # that could not start a task under load): the report says so and fails.
                    report["problems"].append(f"verify could not restore {name}'s spec ({exc}); `swarmml update "
                                              f"{name} --force` or redeploy the stack")
                bar.update(task, completed=1, status="done")
            report["noise"] = method.noise(report["runs"])
            report["steps"] = curve.with_verdicts(curve.efficiencies(method.combine(report["runs"]),
                                                                     report["noise"]["sigma"],
                                                                     report["noise"]["dof"]), thresholds)
            _, failed, unmeasured = curve.curve_check(report["steps"], thresholds)
            report["problems"] += failed
            report["inconclusive"] += unmeasured
            report["problems"] += (report.get("capacity") or {}).get("problems", [])
        if drill == "node-loss":
            task = bar.add_task("node-loss drill", total=None, status="")
            report["drill"] = drills.node_loss(
                client, name, gw["Spec"]["Name"], infer_url, infer_body([ONE_ROW]), cluster,
                rebalance=lambda c, n: ops.rebalance(c, n, show=False),
                stop_node=clusters.kill_node, start_node=clusters.start_node, node_running=clusters.node_running,
                node=node, how=how, cut_node=clusters.cut_node, mend_node=clusters.mend_node,
                vip_holder=clusters.vip_holder, running_containers=clusters.running_containers, rate=drill_rate,
                max_recovery_s=max_recovery_s, max_failed_pct=max_failed_pct,
                on_phase=lambda s: bar.update(task, status=s))
            bar.update(task, total=1, completed=1, status="done")
            report["problems"] += report["drill"]["problems"]
    report["problems"] = [f"{c['name']}: {c['detail']}" for c in report["checks"] if not c["ok"]] + report["problems"]
    report["ok"] = not report["problems"] and not report["inconclusive"]
    report["verdict"] = "fail" if report["problems"] else "inconclusive" if report["inconclusive"] else "pass"
    return report


def _fit_steps(client, report, candidates, cpus, cluster, repeat):
    """The default curve's steps that the cluster's free CPU holds (fit.fit); records what it read and left out.

    A local cluster's nodes share this machine's cores, so its busy cores at
    rest are read here; a remote swarm's are not visible, and its nodes' CPUs
    are taken as free.
    """
    if cluster:
        readings = []
        for _ in range(REST_WINDOWS):
            before = verify_io.cpu_snapshot({})
            time.sleep(REST_WINDOW_S)
            readings.append(usage.rates(before, verify_io.cpu_snapshot({}))["machine"])
        cores, busy = readings[0]["cores"], min(m["busy"] or 0.0 for m in readings)
    else:
        cores = sum(((n.get("Description") or {}).get("Resources") or {}).get("NanoCPUs", 0)
                    for n in engine_nodes.nodes(client) if (n.get("Status") or {}).get("State") == "ready") / 1e9
        busy = 0.0
    if not cores:
        return candidates
    kept, left = fit.fit(candidates, cpus, cores, busy)
    report["settings"].update(steps=kept, left_out=left, order=method.order(kept, repeat),
                              free_cpu={"cores": cores, "busy_at_rest": round(busy, 3)})
    if len(kept) < 2:
        report["inconclusive"].append(fit.too_few(kept, left, cpus))
        return []
    return kept


def _round(value, digits=2):
    return None if value is None else round(value, digits)


def _preflight(infer_url, model, name):
    """One request before anything changes: the gateway answers and serves the model."""
    r = run_load(infer_url, infer_body([ONE_ROW]), connections=1, max_requests=1, duration=15, timeout=10)
    rec = r.records[0]
    if rec.status == 404:
        raise UsageError(f"--model: {name} does not serve a model named {model!r} (404 from {infer_url})")
    if rec.error:
        raise SwarmmlError(f"the gateway does not answer inference requests at {infer_url}: {rec.error}")


def _running_containers(client, name):
    svc = engine_services.service(client, name)
    return sorted(t["Status"]["ContainerStatus"]["ContainerID"]
                  for t in engine_tasks.tasks(client, [svc["ID"]], desired_running=True)
                  if placement.is_running(t) and (t["Status"].get("ContainerStatus") or {}).get("ContainerID"))


def health_checks(client, name, infer_url, step=lambda s: None):
    svc = engine_services.service(client, name)
    tasks = engine_tasks.tasks(client, [svc["ID"]], desired_running=True)
    nodes = engine_nodes.nodes(client)
    template = svc["Spec"]["TaskTemplate"]
    result = [checks.placement_check(placement.placement(svc, tasks, nodes), nodes,
                                     template.get("Placement"), (template.get("Resources") or {}).get("Reservations"))]
    step("every replica answers")
    containers = _running_containers(client, name)
    expected = {c[:12] for c in containers}
    # Enough golden requests that the gateway's balancing reaches every replica several times, again until
    # each has answered or ANSWER_WAIT_S passed: a replica that just started (after a rebalance or a node
    # coming back) runs before the gateway's DNS and health check have found it.
    seen, bodies, deadline = set(), {}, time.monotonic() + ANSWER_WAIT_S
    while True:
        load = run_load(infer_url, infer_body(GOLDEN_ROWS), connections=max(4, len(containers)), duration=30,
                        max_requests=max(50, 20 * len(containers)), keep_bodies=True)
        seen |= set(load.replicas)
        bodies.update(load.bodies)
        if expected <= seen or time.monotonic() > deadline:
            break
        time.sleep(1)
    result.append(checks.answer_check(seen, containers))
    step("golden predictions")
    result.append(checks.golden_check(bodies, containers))
    return result


def _set_replicas(spec, n):
    spec["Mode"] = {"Replicated": {"Replicas": n}}
    return spec


def _fast_update(client, name, mutate, timeout=300):
    """Apply verify's own spec change to every task at once, then wait until it runs."""
    svc = engine_services.service(client, name)
    spec = mutate(copy.deepcopy(svc["Spec"]))
    spec.setdefault("UpdateConfig", {}).update({"Parallelism": 0, "Delay": 0, "Monitor": 1_000_000_000})
    marker, since = rollout.update_marker(svc), converge.now(client)
    engine_services.update_service(client, svc, spec)
    conv = converge.wait(client, [name], "update", {name: marker}, timeout=timeout, since=since, show=False)
    if not conv.ok:
        raise SwarmmlError("; ".join(conv.problems))


def restore(client, name, original):
    """The spec verify found: first with every task replaced at once, then the original update settings.

    The second update changes only UpdateConfig, which restarts nothing.
    """
    def back(spec):
        out = copy.deepcopy(original)
        # ForceUpdate only ever grows; going back to an older value would be refused.
        out["TaskTemplate"]["ForceUpdate"] = spec["TaskTemplate"].get("ForceUpdate", 0)
        return out
    _fast_update(client, name, back)
    svc = engine_services.service(client, name)
    engine_services.update_service(client, svc, back(svc["Spec"]))


def _wait_exact_replicas(client, name, infer_url, body, timeout=90):
    """Until the gateway's answers come from exactly the running replicas.

    After a scale the gateway needs a moment to find new replicas (DNS every
    second, then a health check), and removed ones may still answer while they
    drain: either would skew a step.
    """
    deadline = time.monotonic() + timeout
    seen = expected = set()
    while time.monotonic() < deadline:
        expected = {c[:12] for c in _running_containers(client, name)}
        r = run_load(infer_url, body, connections=max(2, 2 * len(expected)), duration=1.0)
        seen = set(r.replicas)
        if seen == expected and r.errors == 0:
            return expected
    raise SwarmmlError(f"the gateway did not settle on the {len(expected)} running replicas of {name} within "
                       f"{timeout} s (answers came from {len(seen)}; missing: {sorted(expected - seen)}, "
                       f"not running: {sorted(seen - expected)})")


def _warm_up(infer_url, body, connections, rate):
    """The step's own load in short windows until they agree (method.settled); what was seen.

    A closed loop settles on requests/s; an open one is sent at a fixed rate,
    so it settles on the median latency instead.
    """
    windows, start = [], time.monotonic()
    while time.monotonic() - start < WARMUP_MAX_S:
        s = run_load(infer_url, body, connections=connections, duration=WARMUP_WINDOW_S, rate=rate).summary()
        windows.append(s["p50_ms"] if rate else s["requests_per_s"])
        if method.settled(windows):
            break
    return {"s": round(time.monotonic() - start, 1), "on": "p50_ms" if rate else "requests_per_s",
            "windows": windows, "settled": method.settled(windows)}


def _scale_to(client, name, infer_url, body, n):
    scaled = ops.scale(client, {name: n}, show=False, timeout=300)
    if not scaled.ok:
        raise SwarmmlError(f"scaling {name} to {n} failed: " + "; ".join(scaled.problems))
    _wait_exact_replicas(client, name, infer_url, body)


def _cpu_groups(client, name, gateway):
    return {"replicas": _running_containers(client, name), "gateway": _running_containers(client, gateway)}


def capacity_search(client, name, gateway, infer_url, steps, cpus, slo, rung_s, gateway_limit, bar):
    """Per replica count: an open-loop ladder of rates up to the first that misses the SLO (capacity.sustainable).

    The ladder starts from the closed loop's settled throughput at that count,
    which its warm-up measures anyway.
    """
    percentile, bound_ms = slo
    body = infer_body([ONE_ROW])
    task = bar.add_task("capacity under the SLO", total=len(steps), status=f"p{percentile:g} <= {bound_ms:g} ms")
    rows = []
    for i, n in enumerate(sorted(steps)):
        bar.update(task, status=f"{n} replicas: scaling")
        _scale_to(client, name, infer_url, body, n)
        bar.update(task, status=f"{n} replicas: closed-loop estimate")
        warm = _warm_up(infer_url, body, 8 * n, None)
        estimate = median(warm["windows"][-method.SETTLE_WINDOWS:])
        if not estimate:
            raise SwarmmlError(f"{name} answered no requests at {n} replicas: no capacity to search")
        rungs = []
        for rate in capacity.ladder(estimate):
            # Little's law: a rung within the SLO has about rate x bound requests in flight; twice that many
            # connections, and the generator never holds back a request the service could have taken.
            conns = 8 * n + connections_for(rate, 2 * bound_ms / 1000.0)
            bar.update(task, status=f"{n} replicas: {rate:g} requests/s offered, {conns} connections")
            load, cpu = _measure(client, name, gateway, infer_url, body, conns, rung_s, rate)
            rung = _rung(rate, load, cpu, cpus, gateway_limit, percentile, conns)
            if not capacity.meets(rung, percentile, bound_ms)[0]:
                # A window's p99 is its slowest request or two: a miss is measured again, and the rung judged
                # on both windows together, so that one stall does not end the ladder.
                bar.update(task, status=f"{n} replicas: {rate:g} requests/s again")
                more, cpu = _measure(client, name, gateway, infer_url, body, conns, rung_s, rate)
                load = LoadResult(records=load.records + more.records, duration_s=load.duration_s + more.duration_s)
                rung = {**_rung(rate, load, cpu, cpus, gateway_limit, percentile, conns), "windows": 2,
                        "first_window": {"latency_ms": rung["latency_ms"], "requests_per_s": rung["requests_per_s"],
                                         "errors": rung["errors"]}}
            rungs.append(rung)
            if not capacity.meets(rung, percentile, bound_ms)[0]:
                break
        found = capacity.sustainable(rungs, percentile, bound_ms)
        rows.append({"replicas": n, "closed_loop_per_s": estimate, **found,
                     "per_replica_per_s": round(found["sustainable_per_s"] / n, 1)
                     if found["sustainable_per_s"] else None, "rungs": rungs})
        bar.update(task, completed=i + 1, status=f"{n} replicas: {found['sustainable_per_s']} requests/s")
    return rows


def _measure(client, name, gateway, infer_url, body, conns, seconds, rate, filler=()):
    """The load's result, and the CPU the replicas, the gateway and the machine used while it ran.

    filler: the pids of a verify.ballast running meanwhile, whose CPU the machine's busy figure leaves out.
    """
    groups = _cpu_groups(client, name, gateway)
    before = verify_io.cpu_snapshot(groups, filler)
    load = run_load(infer_url, body, connections=conns, duration=seconds, rate=rate)
    return load, usage.rates(before, verify_io.cpu_snapshot(groups, filler))


def _rung(rate, load, cpu, cpus, gateway_limit, percentile, conns):
    kind, why = usage.bottleneck(cpu, cpus, gateway_limit)
    summary = load.summary()
    return {"offered_per_s": rate, "requests_per_s": summary["requests_per_s"],
            "latency_ms": _round(load.percentile(percentile)), "p50_ms": summary["p50_ms"],
            "errors": summary["errors"], "sent_late_p99_ms": summary["sent_late_p99_ms"], "windows": 1,
            "connections": conns, "replica_cores": (cpu.get("replicas") or {}).get("cores"),
            "machine_busy": cpu["machine"].get("busy"), "bottleneck": kind, "bottleneck_detail": why}


def prepare_curve(client, name, infer_url, cpus, batching, base, bar):
    """The curve's CPU limit and batching mode on the service, at the base's replicas, answering through the gateway."""
    def setup(spec):
        cs = spec["TaskTemplate"]["ContainerSpec"]
        cs["Env"] = sorted([e for e in cs.get("Env") or [] if not e.startswith(BATCHING_ENV + "=")] +
                           [f"{BATCHING_ENV}={batching}"])
        resources = spec["TaskTemplate"].setdefault("Resources", {})
        resources.setdefault("Limits", {})["NanoCPUs"] = int(round(cpus * 1e9))
        # A reservation above the new limit would be refused; one below it stays.
        if (resources.get("Reservations") or {}).get("NanoCPUs", 0) > cpus * 1e9:
            resources["Reservations"]["NanoCPUs"] = int(round(cpus * 1e9))
        return _set_replicas(spec, base)

    task = bar.add_task("preparing the curve", total=1, status=f"{base} replicas at {cpus} CPU, batching {batching}")
    _fast_update(client, name, setup)
    _wait_exact_replicas(client, name, infer_url, infer_body([ONE_ROW]))
    bar.update(task, completed=1, status="done")


def scaling_curve(client, name, gateway, infer_url, order, cpus, duration, connections, rate, batching,
                  gateway_limit, bar, results, filler=None):
    """Appends one measurement (a plain dict) per entry of order, a replica count each, in that order, to results.

    Appended as they are made, so that a failure halfway keeps the runs before it.
    filler: a verify.ballast.Ballast, set for each step to fill the cores its warm-up left wholly idle.
    """
    task = bar.add_task("scaling curve", total=len(order), status=f"{cpus} CPU per replica, batching {batching}")
    body = infer_body([ONE_ROW])
    for i, n in enumerate(order):
        bar.update(task, status=f"{n} replicas: scaling")
        _scale_to(client, name, infer_url, body, n)
        conns = connections or 8 * n  # a queue of 8 per replica: none ever waits for work
        offered = rate * n if rate else None
        bar.update(task, status=f"{n} replicas: warming up")
        pids = filler.pids if filler else []
        before = verify_io.cpu_snapshot({}, pids)
        warmup = _warm_up(infer_url, body, conns, offered)
        if filler:
            machine = usage.rates(before, verify_io.cpu_snapshot({}, pids))["machine"]
            filler.fill(ballast.loops_for(machine["cores"], machine["busy"]) if machine["busy"] is not None else 0)
            warmup["filled_cores"] = len(filler.pids)
        bar.update(task, status=f"{n} replicas: {duration:g} s of load, {conns} connections")
        load, cpu = _measure(client, name, gateway, infer_url, body, conns, duration, offered,
                             filler.pids if filler else ())
        s = load.summary()
        kind, why = usage.bottleneck(cpu, cpus, gateway_limit)
        results.append({"replicas": n, "requests": s["requests"], "requests_per_s": s["requests_per_s"],
                        "p50_ms": s["p50_ms"], "p95_ms": s["p95_ms"], "p99_ms": s["p99_ms"], "errors": s["errors"],
                        "error_kinds": s["error_kinds"], "replicas_answering": len(load.replicas),
                        "connections": conns, "offered_per_s": offered, "sent_late_p99_ms": s["sent_late_p99_ms"],
                        "order": i, "warmup": warmup, "cpu": cpu, "bottleneck": kind, "bottleneck_detail": why})
        bar.update(task, completed=i + 1, status=f"{n} replicas: {s['requests_per_s']:.0f} req/s")
