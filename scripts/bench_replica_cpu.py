"""Why does a lone 0.25-CPU replica spend more CPU per request than each of six? (issue 15)

The question, taken out of the swarm: predictor containers on this machine's own engine, each under the
same CPU limit as in verify's curve, each loaded directly (no gateway, no overlay network) by its own
closed loop of 8 connections. CPU per request comes from the containers' cgroups, as verify reads it.

Variants, interleaved over --rounds so that the machine's drift lands on all of them:
  alone, six          one replica (verify's base step), six at once (its last step), each loaded directly
  alone-log, six-log  the same with the inference log on (the stack's default)
  alone-gw, six-gw    all replicas loaded through the stack's HAProxy gateway (8 connections per replica)
  alone-noprobe       one replica without its Docker health probe (the probe runs in the replica's cgroup)
  alone-busy          one replica while busy loops (nice 19) occupy both cores: is it the idle machine?
  alone-pinned        one replica held to the first core: is it the replica's threads moving between cores?
  alone-stream        alone-busy, but each loop streams through 64 MiB (nice 19), evicting the cores' caches
                      while the replica waits: is it the replica's code and data going cold between requests?
  alone-open          one replica with no CPU limit, offered the lone replica's rate open-loop: is it the quota?

--log-cost measures instead what the inference log costs a lone replica (issue 16: at most 5%), with
both replicas up throughout.

Run after `swarmml build` (it uses swarmml/predictor:latest from this machine's engine):
    python3 scripts/bench_replica_cpu.py --rounds 2 --duration 10 [--variants alone,alone-open]
    python3 scripts/bench_replica_cpu.py --log-cost --rounds 16 --duration 8
"""
import argparse
import json
import multiprocessing
import os
import shlex
import statistics
import subprocess
import sys
import threading
import time

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # this checkout, not an install

from benchstats import median_interval, paired_ratios  # noqa: E402
from swarmml.verify.loadgen import run as run_load  # noqa: E402
from swarmml.verify.cpu import cpu_snapshot  # noqa: E402
from swarmml.verify.run import ONE_ROW, infer_body  # noqa: E402

IMAGE = os.environ.get("SWARMML_PREDICTOR_IMAGE", "swarmml/predictor:latest")
GATEWAY_IMAGE = os.environ.get("SWARMML_GATEWAY_IMAGE", "swarmml/gateway:latest")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BASE_PORT = 18600
GATEWAY_PORT = BASE_PORT + 99
LABEL = "io.swarmml.bench=replica-cpu"
NETWORK = "swarmml-bench-replica-cpu"


def stack_probe():
    """The predictor's health probe as docker-stack.yml runs it (CMD form: the argv after "CMD")."""
    with open(os.path.join(ROOT, "docker-stack.yml")) as f:
        test = yaml.safe_load(f)["services"]["predictor"]["healthcheck"]["test"]
    return test[1:]


def _wait_answering(url, replicas, timeout):
    """Until answers through url come from this many replicas (the gateway needs a moment to find them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = run_load(url, infer_body([ONE_ROW]), connections=4, max_requests=20 * replicas, duration=5, timeout=5)
        if len(r.replicas) == replicas:
            return
        time.sleep(0.5)
    sys.exit(f"bench_replica_cpu: {url} did not answer from {replicas} replicas within {timeout} s")


def start(n, cpus, probe=True, log=False, gateway=False, first=0, cpuset=None):
    """n predictor containers (and the gateway in front of them), on ports from BASE_PORT + first: their IDs."""
    subprocess.run(["docker", "network", "create", "--label", LABEL, NETWORK], capture_output=True)
    ids = []
    for i in range(n):
        args = ["docker", "run", "-d", "--rm", "--label", LABEL, "-p", f"127.0.0.1:{BASE_PORT + first + i}:8080",
                "-e", "SWARMML_MODELS=iris-rf", "-e", "SWARMML_BATCHING=off", "--memory", "512m",
                "--network", NETWORK, "--network-alias", "tasks.predictor"]
        if log:
            args += ["-e", "SWARMML_INFERENCE_LOG=/tmp/inference.jsonl"]
        if cpus:
            args += ["--cpus", str(cpus)]
        if cpuset is not None:
            args += ["--cpuset-cpus", cpuset]
        # docker run takes the probe as a shell line; the stack's own argv, quoted, is the same command
        args += (["--health-cmd", shlex.join(stack_probe()), "--health-interval", "2s", "--health-timeout", "5s"]
                 if probe else ["--no-healthcheck"])
        ids.append(subprocess.check_output(args + [IMAGE], text=True).strip())
    for i in range(n):
        _wait_answering(_url(BASE_PORT + first + i), 1, 120)
    if gateway:  # the stack's HAProxy, finding the replicas by the same DNS name as in a stack
        subprocess.check_output(["docker", "run", "-d", "--rm", "--label", LABEL, "--network", NETWORK,
                                 "-p", f"127.0.0.1:{GATEWAY_PORT}:8080", GATEWAY_IMAGE], text=True)
        _wait_answering(_url(GATEWAY_PORT), n, 60)
    return ids


def _url(port):
    return f"http://127.0.0.1:{port}/v2/models/iris-rf/infer"


def _cpu(ids):
    """(CPU ns, throttled periods, periods) per container, as verify reads them."""
    per = cpu_snapshot({"replicas": ids})["containers"]["replicas"]
    return [per[c] for c in ids]


def _row(before, after, ok, seconds, errors):
    """One container's measures from its two CPU readings and the requests it answered."""
    cpu_ns, throttled, periods = (a - b for a, b in zip(after, before))
    return {"requests_per_s": round(ok / seconds, 1), "errors": errors,
            "cpu_ms_per_request": round(cpu_ns / 1e6 / ok, 3) if ok else None,
            "cpu_cores": round(cpu_ns / 1e9 / seconds, 3),
            "throttled_share": round(throttled / periods, 2) if periods else None}


def stop_all():
    ids = subprocess.check_output(["docker", "ps", "-aq", "--filter", f"label={LABEL}"], text=True).split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def _burn(stop_at):
    os.nice(19)
    while time.time() < stop_at:
        pass


def measure(ids, duration, rate=None, first=0):
    """Each container under its own load at once: per container (requests/s, CPU ms per request, throttled)."""
    urls = [_url(BASE_PORT + first + i) for i in range(len(ids))]
    body = infer_body([ONE_ROW])
    for url in urls:  # warm: the first predictions of a fresh process are slow
        run_load(url, body, connections=8, duration=3, rate=rate)
    before = _cpu(ids)
    results = [None] * len(ids)

    def one(k):
        results[k] = run_load(urls[k], body, connections=8, duration=duration, rate=rate)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(len(ids))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [_row(b, a, r.ok, r.duration_s, r.errors) for r, b, a in zip(results, before, _cpu(ids))]


def measure_gateway(ids, duration):
    """All containers loaded through the gateway, 8 connections per replica: per container as measure()."""
    url, body = _url(GATEWAY_PORT), infer_body([ONE_ROW])
    run_load(url, body, connections=8 * len(ids), duration=3)
    before = _cpu(ids)
    r = run_load(url, body, connections=8 * len(ids), duration=duration)
    answered = {k[:12]: v for k, v in r.replicas.items()}
    return [_row(b, a, answered.get(c[:12], 0), r.duration_s, r.errors) for c, b, a in zip(ids, before, _cpu(ids))]


def _stream(stop_at):
    """A burner with a footprint: 64 MiB read and written over and over, far more than a core's L2."""
    import numpy
    os.nice(19)
    block = numpy.ones(8 * 2**20)
    while time.time() < stop_at:
        block += 1.0


def _with_burners(ids, duration, burn=_burn):
    stop_at = time.time() + duration + 8
    burners = [multiprocessing.Process(target=burn, args=(stop_at,)) for _ in range(os.cpu_count() or 2)]
    for p in burners:
        p.start()
    try:
        return measure(ids, duration)
    finally:
        for p in burners:
            p.terminate()


# name -> f(cpus, the lone replica's last rate, duration) -> per-container measures
VARIANTS = {
    "alone": lambda cpus, rate, d: measure(start(1, cpus), d),
    "six": lambda cpus, rate, d: measure(start(6, cpus), d),
    "alone-log": lambda cpus, rate, d: measure(start(1, cpus, log=True), d),
    "six-log": lambda cpus, rate, d: measure(start(6, cpus, log=True), d),
    "alone-gw": lambda cpus, rate, d: measure_gateway(start(1, cpus, gateway=True), d),
    "six-gw": lambda cpus, rate, d: measure_gateway(start(6, cpus, gateway=True), d),
    "alone-noprobe": lambda cpus, rate, d: measure(start(1, cpus, probe=False), d),
    "alone-busy": lambda cpus, rate, d: _with_burners(start(1, cpus), d),
    "alone-pinned": lambda cpus, rate, d: measure(start(1, cpus, cpuset="0"), d),
    "alone-stream": lambda cpus, rate, d: _with_burners(start(1, cpus), d, burn=_stream),
    "alone-open": lambda cpus, rate, d: measure(start(1, None), d, rate=rate),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--cpus", type=float, default=0.25)
    ap.add_argument("--variants", default="alone,six,alone-log,six-log,alone-gw,six-gw")
    ap.add_argument("--log-cost", action="store_true",
                    help="instead: a lone replica with and without the inference log, both up throughout")
    ap.add_argument("--out", default=None, help="default: results/replica-cpu.json (--log-cost: replica-cpu-log.json)")
    args = ap.parse_args()
    if args.out is None:
        args.out = os.path.join(os.path.dirname(__file__), "results",
                                "replica-cpu-log.json" if args.log_cost else "replica-cpu.json")
    if args.log_cost:
        return log_cost_run(args)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        ap.error(f"--variants: unknown {', '.join(unknown)} (known: {', '.join(VARIANTS)})")
    runs = []
    lone_rate = None
    try:
        for k in range(args.rounds):
            for name in (names if k % 2 == 0 else names[::-1]):
                stop_all()
                per = VARIANTS[name](args.cpus, lone_rate or 35.0, args.duration)
                if name == "alone":
                    lone_rate = per[0]["requests_per_s"]
                runs.append({"round": k, "variant": name, "load_average": os.getloadavg()[0], "replicas": per})
                cpu = [p["cpu_ms_per_request"] for p in per]
                print(f"round {k} {name:14s} req/s {[p['requests_per_s'] for p in per]} CPU ms/request {cpu} "
                      f"throttled {[p['throttled_share'] for p in per]} load {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        stop_all()
        subprocess.run(["docker", "network", "rm", NETWORK], capture_output=True)
    summary = {}
    for name in names:
        vals = [p["cpu_ms_per_request"] for r in runs if r["variant"] == name for p in r["replicas"]
                if p["cpu_ms_per_request"]]
        if vals:
            summary[name] = {"median": round(statistics.median(vals), 3), "min": min(vals), "max": max(vals)}
    print(json.dumps(summary, indent=1))
    costs = log_costs(runs, names)
    if costs:
        print(json.dumps(costs, indent=1))
    _save(args, runs, cpu_ms_per_request=summary, log_cost=costs)


def log_cost_run(args):
    """What the inference log costs a lone replica under the quota, the case where it costs the most (an idle
    machine; six replicas at once showed no cost). Fresh containers per round add their own noise (a new
    process warming up), so here the two replicas stay up, with the stack's health probe, and are loaded one
    at a time in an order that alternates from round to round."""
    runs = []
    try:
        stop_all()
        pair = {"alone": (start(1, args.cpus), 0), "alone-log": (start(1, args.cpus, log=True, first=1), 1)}
        for k in range(args.rounds):
            for name in (list(pair) if k % 2 == 0 else list(pair)[::-1]):
                ids, first = pair[name]
                per = measure(ids, args.duration, first=first)
                runs.append({"round": k, "variant": name, "load_average": os.getloadavg()[0], "replicas": per})
                print(f"round {k} {name:10s} req/s {per[0]['requests_per_s']} CPU ms/request "
                      f"{per[0]['cpu_ms_per_request']} load {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        stop_all()
        subprocess.run(["docker", "network", "rm", NETWORK], capture_output=True)
    costs = log_costs(runs, list(pair))
    print(json.dumps(costs, indent=1))
    _save(args, runs, log_cost=costs)


def _save(args, runs, **results):
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        # the output's path as given, relative to the checkout where it lies inside it: no machine's paths recorded
        settings = {**vars(args), "out": os.path.relpath(args.out, ROOT) if os.path.abspath(args.out).startswith(
            os.path.abspath(ROOT) + os.sep) else args.out}
        json.dump({"settings": settings, "runs": runs, **results}, f, indent=1)


def _per_round(runs, variant, key):
    """round -> the mean of key over the variant's replicas in that round."""
    out = {}
    for r in (r for r in runs if r["variant"] == variant):
        vals = [p[key] for p in r["replicas"] if p[key]]
        if vals:
            out[r["round"]] = statistics.fmean(vals)
    return out


def log_costs(runs, names):
    """What the inference log costs a replica under the quota (issue 16: at most 5% of requests/s): for
    alone and six, the with-log / without-log ratio of each round's requests/s per replica and CPU per
    request, paired within the round, as median [95% bootstrap interval]."""
    out = {}
    for base in ("alone", "six"):
        if base not in names or f"{base}-log" not in names:
            continue
        row = {}
        for key in ("requests_per_s", "cpu_ms_per_request"):
            plain, logged = _per_round(runs, base, key), _per_round(runs, f"{base}-log", key)
            rounds = sorted(set(plain) & set(logged))
            ratios = paired_ratios([logged[k] for k in rounds], [plain[k] for k in rounds])
            if ratios:
                row[key] = {"ratio": [round(v, 3) for v in median_interval(ratios)],
                            "rounds": [round(v, 3) for v in ratios]}
        out[f"{base}-log / {base}"] = row
    return out


if __name__ == "__main__":
    main()
