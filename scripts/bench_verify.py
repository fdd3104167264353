#!/usr/bin/env python3
"""Benchmark: the scaling curve and the node-loss drill on a local 3-node cluster, against the issue's targets.

    python3 scripts/bench_verify.py [--cluster local] [--duration 15] [--batching off,on] [--repeat 2] [--runs 1]
                                    [--out DIR]

Brings up the cluster (if needed), builds and pushes the images, deploys
docker-stack.yml, scales the predictor to 6 and runs

    swarmml verify --steps 1,2,4,6 --cpus 0.25 --repeat 2 --min-efficiency 2=0.9,4=0.85,6=0.8 --drill node-loss

`--runs` times in a row per batching mode (the drill only with the first).
Each run's report goes to OUT/<batching>[-<n>]/; OUT/summary.md has the
tables for the README, with how busy the machine was (the curve shares 2
cores with everything else) and, over several runs, how far each step's
E(N) moved from run to run.
"""
import argparse
import json
import os
import subprocess
import sys

from swarmml.verify import report as reports

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
    lines = ["| replicas | requests/s (median) | spread | p99 ms | errors | replica CPU ms per request | E(N) | "
             "E per CPU | target | verdict | CPU per replica | gateway CPU | machine busy | limited by |",
             "|" + " ---: |" * 9 + " --- |" + " ---: |" * 3 + " --- |"]
    for s in report["steps"]:
        cpu = s["cpu"]
        per = cpu["replicas"]["per_container"]
        lines.append(f"| {s['replicas']} | {s['requests_per_s']:.1f} | {reports.spread(s)} | {s['p99_ms']:.0f} | "
                     f"{s['errors']} | {reports.ms(s['cpu_s_per_request'])} | "
                     f"{reports.with_interval(s['efficiency'], s.get('efficiency_interval'))} | "
                     f"{reports.with_interval(s['cpu_efficiency'], s.get('cpu_efficiency_interval'))} | "
                     f"{s['threshold'] or ''} | {s['verdict']} | {sum(per) / len(per):.3f} | "
                     f"{cpu['gateway']['cores']:.3f} | {cpu['machine']['busy']:.2f} of {cpu['machine']['cores']} | "
                     f"{s['bottleneck']} |")
    noise = report["noise"]["pairs"]
    if noise:
        lines += ["", "Noise (the same step twice in a row): " + "; ".join(
            f"{p['replicas']} replicas {p['requests_per_s'][0]:.1f} / {p['requests_per_s'][1]:.1f} requests/s "
            f"({p['difference']:.1%})" for p in noise) + "."]
    moves = report["steps"][0].get("base_moves")
    if moves:
        lines += ["", "The base from one bracket to the next: " + ", ".join(f"{m:.3f}" for m in moves) + "."]
    return "\n".join(lines)


def run_to_run(reports_by_run):
    """Each step's E(N) over several verify runs, and how far apart (the issue's ±0.1)."""
    steps = sorted({s["replicas"] for r in reports_by_run for s in r["steps"]})
    lines = ["| replicas | E(N) per run | max - min |", "| ---: | --- | ---: |"]
    for n in steps:
        es = [s["efficiency"] for r in reports_by_run for s in r["steps"] if s["replicas"] == n]
        lines.append(f"| {n} | {' / '.join(f'{e:.2f}' for e in es)} | {max(es) - min(es):.2f} |")
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
    ap.add_argument("--repeat", type=int, default=2, help="verify's --repeat: measurements of each step per run")
    ap.add_argument("--runs", type=int, default=1, help="verify runs per mode, to see the run-to-run variation")
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
        done_runs = []
        for n in range(args.runs):
            drill = [] if (args.no_drill or i or n) else ["--drill", "node-loss"]
            out = os.path.join(args.out, mode + (f"-{n + 1}" if args.runs > 1 else ""))
            load = loadavg()
            note(f"verify, batching {mode}{' with the node-loss drill' if drill else ''} "
                 f"(load average {load}) -> {out}")
            done = swarmml("verify", "predictor", "--steps", "1,2,4,6", "--cpus", "0.25", "--batching", mode,
                           "--duration", str(args.duration), "--repeat", str(args.repeat), "--min-efficiency",
                           TARGETS, *drill, "--report", out, "-o", "json", capture=True, check=False)
            if done.returncode not in (0, 1):
                sys.exit(f"bench_verify: verify could not run ({done.returncode})")
            report = json.loads(done.stdout)
            done_runs.append(report)
            failed |= not report["ok"]
            summary += [f"### batching {mode}" + (f", run {n + 1}" if args.runs > 1 else ""), "",
                        f"{'PASS' if report['ok'] else 'FAIL'}; load average before the run {load}, after "
                        f"{loadavg()}" + (" (which counts the idle-priority loops that filled the cores a "
                                          "step left wholly idle)" if report["settings"].get("fill_idle")
                                          else "") + ".", "",
                        curve_table(report), ""]
            if report.get("drill"):
                summary += [drill_line(report["drill"]), ""]
            summary += [f"- {p}" for p in report["problems"]] + [""]
        if len(done_runs) > 1:
            summary += [f"### batching {mode}: E(N) from run to run", "", run_to_run(done_runs), ""]
    text = "\n".join(summary)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(text)
    print(text)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
