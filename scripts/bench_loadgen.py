#!/usr/bin/env python3
"""Benchmark: the ceiling of swarmml's load generator, and its CPU per request.

verify's load generator shares the machine's cores with the replicas it
measures, so two numbers matter: the most requests/s it can drive (it must
be far above any curve step), and the CPU it burns per request at the
rates verify uses (that CPU is taken from the replicas).

The trivial server is HAProxy answering every request itself
(`http-request return`), pinned to one core; the load generator runs on the
other. wrk, when installed, drives the same server for comparison.

    python3 scripts/bench_loadgen.py [--duration 5] [--out bench-loadgen.md]

Needs: haproxy (apt-get install haproxy); taskset; wrk optional.
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

SERVER_CORE, LOAD_CORE = "1", "0"
BODY = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [5.9, 3.0, 5.1, 1.8]}]})

# One process per measurement, so that each reads its own CPU time.
MEASURE = r"""
import json, resource, sys
from swarmml.verify import loadgen
url, body, conns, rate, duration = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
before = resource.getrusage(resource.RUSAGE_SELF)
r = loadgen.run(url, body, connections=conns, duration=duration, rate=rate or None)
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
s = r.summary()
print(json.dumps({"requests_per_s": s["requests_per_s"], "errors": s["errors"], "p50_ms": s["p50_ms"],
                  "p99_ms": s["p99_ms"], "cpu_cores": cpu / r.duration_s,
                  "cpu_us_per_request": cpu / max(r.requests, 1) * 1e6}))
"""

HAPROXY_CFG = """
global
    maxconn 2000
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
frontend trivial
    bind 127.0.0.1:{port}
    http-request return status 200 content-type application/json string '{{"outputs":[]}}' hdr x-replica trivial
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(core, argv):
    return (["taskset", "-c", core] if shutil.which("taskset") and os.cpu_count() > 1 else []) + argv


def measure(url, connections, rate, duration):
    out = subprocess.run(pinned(LOAD_CORE, [sys.executable, "-c", MEASURE, url, BODY, str(connections), str(rate),
                                            str(duration)]), capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def wrk(url, connections, duration):
    if not shutil.which("wrk"):
        return None
    out = subprocess.run(pinned(LOAD_CORE, ["wrk", "-t1", f"-c{connections}", f"-d{int(duration)}s", url]),
                         capture_output=True, text=True).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(found.group(1)) if found else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    args = ap.parse_args()
    if not shutil.which("haproxy"):
        sys.exit("bench_loadgen: needs haproxy (apt-get install haproxy)")
    port = free_port()
    url = f"http://127.0.0.1:{port}/v2/models/iris-rf/infer"
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as cfg:
        cfg.write(HAPROXY_CFG.format(port=port))
    server = subprocess.Popen(pinned(SERVER_CORE, ["haproxy", "-f", cfg.name]))
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("bench_loadgen: haproxy did not start")
        rows = []
        for mode, conns, rate in (("closed", 8, 0), ("closed", 64, 0), ("open", 48, 300), ("open", 48, 1000)):
            m = measure(url, conns, rate, args.duration)
            rows.append((mode, conns, rate or "-", m))
        ref = wrk(url, 64, args.duration)
    finally:
        server.terminate()
        server.wait()
        os.unlink(cfg.name)
    lines = ["| loop | connections | offered req/s | req/s | p50 ms | p99 ms | errors | load generator CPU (cores) | "
             "CPU µs per request |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for mode, conns, rate, m in rows:
        lines.append(f"| {mode} | {conns} | {rate} | {m['requests_per_s']:.0f} | {m['p50_ms']} | {m['p99_ms']} | "
                     f"{m['errors']} | {m['cpu_cores']:.3f} | {m['cpu_us_per_request']:.0f} |")
    if ref:
        lines.append(f"\nwrk -t1 -c64 against the same server: {ref:.0f} req/s.")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
