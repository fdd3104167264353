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
  alone-open          one replica with no CPU limit, offered the lone replica's rate open-loop: is it the quota?

Run after `swarmml build` (it uses swarmml/predictor:latest from this machine's engine):
    python3 scripts/bench_replica_cpu.py --rounds 2 --duration 10 [--variants alone,alone-open]
"""
import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from swarmml.loadgen import run as run_load  # noqa: E402
from swarmml.verify.cpu import cpu_snapshot  # noqa: E402
from swarmml.verify.run import ONE_ROW, infer_body  # noqa: E402

IMAGE = os.environ.get("SWARMML_PREDICTOR_IMAGE", "swarmml/predictor:latest")
GATEWAY_IMAGE = os.environ.get("SWARMML_GATEWAY_IMAGE", "swarmml/gateway:latest")
PROBE = ("import socket,sys; socket.create_connection(('127.0.0.1',8080),1.5).close(); "
         "s=socket.create_connection(('127.0.0.1',8081),1.5); s.sendall(b'GET /v2/health/ready HTTP/1.0\\r\\n\\r\\n'); "
         "sys.exit(s.recv(12)[9:12]!=b'200')")
BASE_PORT = 18600
LABEL = "io.swarmml.bench=replica-cpu"


NETWORK = "swarmml-bench-replica-cpu"
GATEWAY_PORT = BASE_PORT + 99


def start(n, cpus, probe=True, log=False, gateway=False):
    ids = []
    for i in range(n):
        args = ["docker", "run", "-d", "--rm", "--label", LABEL, "-p", f"127.0.0.1:{BASE_PORT + i}:8080",
                "-e", "SWARMML_MODELS=iris-rf", "-e", "SWARMML_BATCHING=off", "--memory", "512m",
                "--network", NETWORK, "--network-alias", "tasks.predictor"]
        if log:
            args += ["-e", "SWARMML_INFERENCE_LOG=/tmp/inference.jsonl"]
        if cpus:
            args += ["--cpus", str(cpus)]
        args += (["--health-cmd", f'python -S -c "{PROBE}"', "--health-interval", "2s", "--health-timeout", "5s"]
                 if probe else ["--no-healthcheck"])
        ids.append(subprocess.check_output(args + [IMAGE], text=True).strip())
    for i in range(n):
        url = f"http://127.0.0.1:{BASE_PORT + i}/v2/models/iris-rf/infer"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            r = run_load(url, infer_body([ONE_ROW]), connections=1, max_requests=1, duration=5, timeout=5)
            if r.ok:
                break
            time.sleep(0.5)
    if gateway:  # the stack's HAProxy, finding the replicas by the same DNS name as in a stack
        subprocess.check_output(["docker", "run", "-d", "--rm", "--label", LABEL, "--network", NETWORK,
                                 "-p", f"127.0.0.1:{GATEWAY_PORT}:8080", GATEWAY_IMAGE], text=True)
        url = f"http://127.0.0.1:{GATEWAY_PORT}/v2/models/iris-rf/infer"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = run_load(url, infer_body([ONE_ROW]), connections=4, max_requests=20 * n, duration=5, timeout=5)
            if len(r.replicas) == n:
                break
            time.sleep(0.5)
    return ids


def _cpu(ids):
    """(CPU ns, throttled periods, periods) per container, as verify reads them."""
    per = cpu_snapshot({"replicas": ids})["containers"]["replicas"]
    return [per[c] for c in ids]


def stop_all():
    ids = subprocess.check_output(["docker", "ps", "-aq", "--filter", f"label={LABEL}"], text=True).split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
    subprocess.run(["docker", "network", "create", "--label", LABEL, NETWORK], capture_output=True)


def _burn(stop_at):
    os.nice(19)
    while time.time() < stop_at:
        pass


def measure(ids, duration, rate=None, gateway=False):
    """Each container under its own load at once (or all through the gateway, 8 connections per replica):
    per container (requests/s, CPU ms per request, throttled)."""
    urls = [f"http://127.0.0.1:{BASE_PORT + i}/v2/models/iris-rf/infer" for i in range(len(ids))]
    if gateway:
        return _measure_gateway(ids, duration)
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
    after = _cpu(ids)
    out = []
    for r, b, a in zip(results, before, after):
        cpu_ns, thr, per = (a[0] - b[0], a[1] - b[1], a[2] - b[2])
        out.append({"requests_per_s": round(r.requests_per_s, 1), "errors": r.errors,
                    "cpu_ms_per_request": round(cpu_ns / 1e6 / r.ok, 3) if r.ok else None,
                    "cpu_cores": round(cpu_ns / 1e9 / r.duration_s, 3),
                    "throttled_share": round(thr / per, 2) if per else None})
    return out


def _measure_gateway(ids, duration):
    url = f"http://127.0.0.1:{GATEWAY_PORT}/v2/models/iris-rf/infer"
    body = infer_body([ONE_ROW])
    run_load(url, body, connections=8 * len(ids), duration=3)
    before = _cpu(ids)
    r = run_load(url, body, connections=8 * len(ids), duration=duration)
    after = _cpu(ids)
    by_replica = {k[:12]: v for k, v in r.replicas.items()}
    out = []
    for c, b, a in zip(ids, before, after):
        cpu_ns, thr, per = (a[0] - b[0], a[1] - b[1], a[2] - b[2])
        ok = by_replica.get(c[:12], 0)
        out.append({"requests_per_s": round(ok / r.duration_s, 1), "errors": r.errors,
                    "cpu_ms_per_request": round(cpu_ns / 1e6 / ok, 3) if ok else None,
                    "cpu_cores": round(cpu_ns / 1e9 / r.duration_s, 3),
                    "throttled_share": round(thr / per, 2) if per else None})
    return out


def variant(name, duration, cpus, lone_rate):
    stop_all()
    if name in ("alone-gw", "six-gw", "alone-gw-log", "six-gw-log"):
        log = name.endswith("-log")
        return measure(start(6 if name.startswith("six") else 1, cpus, log=log, gateway=True), duration,
                       gateway=True)
    if name == "alone-log":
        return measure(start(1, cpus, log=True), duration)
    if name == "six-log":
        return measure(start(6, cpus, log=True), duration)
    if name == "six":
        return measure(start(6, cpus), duration)
    if name == "alone-noprobe":
        return measure(start(1, cpus, probe=False), duration)
    if name == "alone-open":
        return measure(start(1, None), duration, rate=lone_rate)
    if name == "alone-busy":
        ids = start(1, cpus)
        stop_at = time.time() + duration + 8
        burners = [multiprocessing.Process(target=_burn, args=(stop_at,)) for _ in range(os.cpu_count() or 2)]
        for p in burners:
            p.start()
        try:
            return measure(ids, duration)
        finally:
            for p in burners:
                p.terminate()
    return measure(start(1, cpus), duration)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--cpus", type=float, default=0.25)
    ap.add_argument("--variants", default="alone,six,alone-log,six-log,alone-gw,six-gw")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "replica-cpu.json"))
    args = ap.parse_args()
    names = args.variants.split(",")
    runs = []
    lone_rate = None
    try:
        for k in range(args.rounds):
            for name in (names if k % 2 == 0 else names[::-1]):
                per = variant(name, args.duration, args.cpus, lone_rate or 35.0)
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
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"settings": vars(args), "runs": runs, "cpu_ms_per_request": summary}, f, indent=1)


if __name__ == "__main__":
    main()
