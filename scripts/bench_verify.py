#!/usr/bin/env python3
"""Benchmark: the scaling curve and the node-loss drill on a local 3-node cluster, against the issue's targets.

    python3 scripts/bench_verify.py [--cluster local] [--duration 15] [--batching off,on] [--repeat 1] [--out DIR]

Brings up the cluster (if needed), builds and pushes the images, deploys
docker-stack.yml, scales the predictor to 6 and runs

    swarmml verify --steps 1,2,4,6 --cpus 0.25 --min-efficiency 2=0.9,4=0.85,6=0.8 --drill node-loss

once per batching mode (the drill only with the first). Each run's report
goes to OUT/<batching>[-<n>]/; OUT/summary.md has the tables for the README,
with how busy the machine was: the curve shares 2 cores with everything else.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = "2=0.9,4=0.85,6=0.8"


def swarmml(*args, capture=False, check=True):
    done = subprocess.run([sys.executable, "-m", "swarmml", *args], cwd=ROOT, text=True,
                          stdout=subprocess.PIPE if capture else None)
    if check and done.returncode != 0:
        sys.exit(f"bench_verify: swarmml {' '.join(args)} failed ({done.returncode})")
    return done


def note(text):
    print(f"bench_verify: {text}", file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def curve_table(report):
    lines = ["| replicas | requests/s | p50 ms | p95 ms | p99 ms | errors | E(N) | target | CPU per replica | "
             "gateway CPU | load gen CPU | machine busy | limited by |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for s in report["steps"]:
        cpu = s["cpu"]
        per = cpu["replicas"]["per_container"]
        lines.append(f"| {s['replicas']} | {s['requests_per_s']:.1f} | {s['p50_ms']:.0f} | {s['p95_ms']:.0f} | "
                     f"{s['p99_ms']:.0f} | {s['errors']} | {s['efficiency']:.2f} | {s['threshold'] or ''} | "
                     f"{sum(per) / len(per):.3f} | {cpu['gateway']['cores']:.3f} | {cpu['load_generator']:.3f} | "
                     f"{cpu['machine']['busy']:.2f} of {cpu['machine']['cores']} | {s['bottleneck']} |")
    return "\n".join(lines)


def drill_line(d):
    return (f"Node-loss drill: stopped {d['node']} ({d['replicas_on_node']} of {d['desired']} replicas) under "
            f"{d['rate']:g} requests/s: {d['failed']} of {d['requests']} requests failed ({d['failed_pct']:.3f}%); "
            f"Swarm marked the node down after {d['marked_down_s']} s (heartbeat {d['heartbeat_s']:g} s) and the "
            f"{d['desired']} replicas ran on the other nodes after {d['recovery_s']} s; rebalance "
            f"{_counts(d['rebalance']['before'])} -> {_counts(d['rebalance']['after'])}.")


def _counts(per_node):
    return " ".join(f"{n}:{c}" for n, c in sorted((per_node or {}).items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cluster", default="local")
    ap.add_argument("--duration", type=float, default=15)
    ap.add_argument("--batching", default="off,on", help="modes to measure, in order (the drill runs with the first)")
    ap.add_argument("--repeat", type=int, default=1, help="curves per mode, to see the run-to-run variation")
    ap.add_argument("--no-drill", action="store_true")
    ap.add_argument("--out", default="bench-verify")
    args = ap.parse_args()
    os.environ["SWARMML_CLUSTER"] = args.cluster
    note(f"cluster {args.cluster}: up, build, deploy, scale predictor 6")
    swarmml("cluster", "up", "--name", args.cluster, "--nodes", "3", capture=True)
    swarmml("build", "--push", capture=True)
    swarmml("deploy", os.path.join(ROOT, "docker-stack.yml"), capture=True)
    swarmml("scale", "predictor", "6", capture=True)
    summary = []
    failed = False
    for i, mode in enumerate(m.strip() for m in args.batching.split(",")):
        for n in range(args.repeat):
            drill = [] if (args.no_drill or i or n) else ["--drill", "node-loss"]
            out = os.path.join(args.out, mode + (f"-{n + 1}" if args.repeat > 1 else ""))
            load = loadavg()
            note(f"verify, batching {mode}{' with the node-loss drill' if drill else ''} "
                 f"(load average {load}) -> {out}")
            done = swarmml("verify", "predictor", "--steps", "1,2,4,6", "--cpus", "0.25", "--batching", mode,
                           "--duration", str(args.duration), "--min-efficiency", TARGETS, *drill, "--report", out,
                           "-o", "json", capture=True, check=False)
            if done.returncode not in (0, 1):
                sys.exit(f"bench_verify: verify could not run ({done.returncode})")
            report = json.loads(done.stdout)
            failed |= not report["ok"]
            summary += [f"### batching {mode}" + (f", run {n + 1}" if args.repeat > 1 else ""), "",
                        f"{'PASS' if report['ok'] else 'FAIL'}; load average before the run {load}.", "",
                        curve_table(report), ""]
            if report.get("drill"):
                summary += [drill_line(report["drill"]), ""]
            summary += [f"- {p}" for p in report["problems"]] + [""]
    text = "\n".join(summary)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(text)
    print(text)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
