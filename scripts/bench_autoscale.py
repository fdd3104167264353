#!/usr/bin/env python3
"""Benchmark: the predictor's replicas following a step load (10 -> 90 -> 10 req/s), against static provisioning.

    python3 scripts/bench_autoscale.py [--cluster autoscale] [--profile 10:90,90:60,10:120] [--modes
        autoscale,static-min,static-max] [--p99-ms 250] [--out scripts/results/autoscale-run]

The defaults are the README's recorded runs (scripts/results/autoscale-90, autoscale-90-b): min 2, max 8,
target-rps 15, down-window 30 s.

Deploys docker-stack.yml with stacks/autoscale.yml and stacks/autoscaler-service.yml (iris-rf at 0.25 CPU
per replica, micro-batching off so that one replica is one core's quarter), then for each mode sends the
same open-loop step load through the gateway with swarmml.verify.loadgen, sampling the replicas every second:

- autoscale: the in-cluster controller decides;
- static-min / static-max: the controller scaled to 0, the predictor fixed at the policy's min / max.

Writes OUT/report.json, OUT/report.md (the table for the README) and OUT/autoscale.png (replicas and load
on one time axis, p99 below). Needs the images pushed (`swarmml build --push`, `swarmml autoscale install`
or the bench's --build).
"""
import argparse
import json
import os
import sys
import tempfile
import threading
import time

from swarmml import ops
from swarmml.ops import deploy, services
from swarmml.verify import loadgen
from swarmml.autoscale import timeline
from swarmml.engine import services as engine_services
from swarmml.engine import tasks as engine_tasks
from swarmml.engine import target_client
from swarmml.verify.run import ONE_ROW, infer_body

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

STACK = "ml"
BENCH_OVERRIDE = """version: "3.8"
services:
  predictor:
    environment:
      SWARMML_BATCHING: "off"
"""


class Rec:
    __slots__ = ("at_s", "error", "latency_ms")

    def __init__(self, at_s, latency_ms, error):
        self.at_s, self.latency_ms, self.error = at_s, latency_ms, error


def parse_profile(text):
    out = []
    for part in text.split(","):
        rate, _, secs = part.partition(":")
        out.append((float(rate), float(secs)))
    return out


def deploy_stack(env, extra_files=()):
    """The ML stack with the autoscale policy, the controller and the bench's settings (then extra_files)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        f.write(BENCH_OVERRIDE)
    files = [os.path.join(ROOT, p) for p in ("docker-stack.yml", "stacks/autoscale.yml",
                                             "stacks/autoscaler-service.yml")] + [f.name] + list(extra_files)
    try:
        deploy.deploy(files, environ=env, show_progress=False)
    finally:
        os.unlink(f.name)


def replicas(client, name):
    svc = engine_services.service(client, name)
    running = [t for t in engine_tasks.tasks(client, svc["ID"], desired_running=True)
               if t["Status"]["State"] == "running"]
    return len(running), svc["Spec"]["Mode"]["Replicated"]["Replicas"]


TIMEOUT_S = 10.0


def run_profile(client, url, profile):
    """The step load, phase after phase; returns (records on one clock, replica samples, duration).

    Each phase gets a connection for every request that can be in flight until the timeout: with 64, a
    120 req/s step held at most 64 in flight, the rest waited in the generator, and the gateway (where
    the autoscaler reads the arrival rate) saw only what 2 drowning replicas finished, so the controller
    asked for 4 replicas, then for 8 once those 4 drained the backlog.
    """
    samples, records = [], []
    stop = threading.Event()
    t0 = time.perf_counter()

    def sample():
        while not stop.is_set():
            try:
                running, desired = replicas(client, f"{STACK}_predictor")
                samples.append((time.perf_counter() - t0, running, desired))
            except Exception as exc:  # noqa: BLE001 (a slow manager must not end the run)
                print(f"sample failed: {exc}", file=sys.stderr)
            stop.wait(1.0)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    body = infer_body([ONE_ROW])
    for rate, secs in profile:
        offset = time.perf_counter() - t0
        print(f"  {offset:6.1f} s: {rate:g} req/s for {secs:g} s", flush=True)
        res = loadgen.run(url, body, connections=max(64, loadgen.connections_for(rate, TIMEOUT_S)), rate=rate,
                          duration=secs, timeout=TIMEOUT_S)
        records += [Rec(r.at_s + offset, r.latency_ms, r.error) for r in res.records]
    duration = time.perf_counter() - t0
    stop.set()
    th.join()
    return records, samples, duration


def settle(client, name, n, timeout=120):
    ops.scale(client, {name: n}, timeout=timeout, show=False)


def stop_controller(client, timeout=60):
    """Scale the controller to 0 and wait until no container of it runs.

    The scale is done when Swarm has asked the task to stop; the container still ticks until it exits.
    A controller that outlived its scale-down held 6 replicas in its down-window, and would put them back
    when the bench set the predictor to its minimum.
    """
    name = f"{STACK}_autoscaler"
    settle(client, name, 0)
    svc = engine_services.service(client, name)
    deadline = time.monotonic() + timeout
    while any(t["Status"]["State"] in ("running", "starting") for t in engine_tasks.tasks(client, svc["ID"])):
        if time.monotonic() > deadline:
            sys.exit(f"bench_autoscale: {name} still runs {timeout} s after its scale to 0")
        time.sleep(0.5)


def plot(summaries, profile, path, p99_target):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True, height_ratios=[3, 2])
    colors = {"autoscale": "tab:blue", "static-min": "tab:red", "static-max": "tab:green"}
    for s in summaries:
        t = [r["t"] for r in s.seconds]
        ax.step(t, [r["replicas"] for r in s.seconds], where="post", label=f"replicas ({s.mode})",
                color=colors.get(s.mode), linewidth=2 if s.mode == "autoscale" else 1)
        ax2.plot(t, [r["p99_ms"] if r["p99_ms"] is not None else float("nan") for r in s.seconds],
                 color=colors.get(s.mode), label=f"p99 ({s.mode})", linewidth=1)
    ax.set_ylabel("running replicas")
    rate_ax = ax.twinx()
    auto = next((s for s in summaries if s.mode == "autoscale"), summaries[0])
    rate_ax.plot([r["t"] for r in auto.seconds], [r["sent"] for r in auto.seconds], color="gray", alpha=0.5,
                 label="arrival rate")
    rate_ax.set_ylabel("requests/s sent")
    lines = ax.get_legend_handles_labels()[0] + rate_ax.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + rate_ax.get_legend_handles_labels()[1]
    ax.legend(lines, labels, loc="upper right", fontsize=8)
    ax2.axhline(p99_target, color="black", linestyle="--", linewidth=1, label="p99 target")
    ax2.set_yscale("log")
    ax2.set_ylabel("p99 ms (per second)")
    ax2.set_xlabel("seconds")
    ax2.legend(loc="upper right", fontsize=8)
    steps = " -> ".join(f"{r:g}" for r, _ in profile)
    ax.set_title(f"iris-rf, 0.25 CPU per replica, open-loop step load {steps} req/s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def render(out):
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    rows = {r["mode"]: [timeline.Second(**x) for x in r["seconds"]] for r in report["runs"]}
    profile = [tuple(p) for p in report["profile"]]
    step_up = profile[0][1]
    step_down = profile[0][1] + profile[1][1] if len(profile) > 2 else None
    summaries = [timeline.summarize(m, r, report["p99_target_ms"], step_up, step_down) for m, r in rows.items()]
    with open(os.path.join(out, "report.md")) as f:
        head = f.read().split("\n\n")[0]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(head + "\n\n" + timeline.markdown(summaries))
    plot(summaries, profile, os.path.join(out, "autoscale.png"), report["p99_target_ms"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cluster", default=os.environ.get("SWARMML_CLUSTER", "autoscale"))
    ap.add_argument("--profile", default="10:90,90:60,10:120", help="RATE:SECONDS,... phases")
    ap.add_argument("--modes", default="autoscale,static-min,static-max")
    ap.add_argument("--p99-ms", type=float, default=250.0, help="the p99 target")
    ap.add_argument("--min", type=int, default=2)
    ap.add_argument("--max", type=int, default=8)
    ap.add_argument("--target-inflight", help="scale on requests in flight per replica instead of requests/s")
    ap.add_argument("--target-rps", default="15", help="requests/s per replica (ignored with --target-inflight)")
    ap.add_argument("--down-window", default="30s")
    ap.add_argument("--no-deploy", action="store_true")
    ap.add_argument("--build", action="store_true", help="build and push swarmml/autoscaler from this checkout first")
    # not a recorded run's directory: a run with the defaults must not overwrite the README's evidence
    ap.add_argument("--out", default=os.path.join(ROOT, "scripts", "results", "autoscale-run"))
    ap.add_argument("--render", action="store_true", help="only redraw OUT's report.md and PNG from its report.json")
    args = ap.parse_args()
    if args.render:
        return render(args.out)
    if args.target_inflight:
        args.target_rps = None
    os.environ["SWARMML_CLUSTER"] = args.cluster
    client = target_client(args.cluster)
    env = dict(os.environ, PREDICTOR_CPUS="0.25", AUTOSCALE_MIN=str(args.min), AUTOSCALE_MAX=str(args.max),
               AUTOSCALE_TARGET_INFLIGHT=args.target_inflight or "1.5", AUTOSCALE_DOWN_WINDOW=args.down_window)
    if args.build:
        from swarmml.build.autoscaler import build_and_push
        build_and_push(cluster=args.cluster)
    extra = []
    if args.target_rps:
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            f.write(f'version: "3.8"\nservices:\n  predictor:\n    deploy:\n      labels:\n'
                    f'        io.swarmml.autoscale.target-rps: "{args.target_rps}"\n'
                    f'        io.swarmml.autoscale.metric: "rps"\n')
        extra.append(f.name)
    if not args.no_deploy:
        print("deploying the stack ...", flush=True)
        deploy_stack(env, extra)
    for name in extra:
        os.unlink(name)
    profile = parse_profile(args.profile)
    step_up = profile[0][1]
    step_down = profile[0][1] + profile[1][1] if len(profile) > 2 else None
    url = f"{services.url(client, 'gateway', STACK)}/v2/models/iris-rf/infer"
    summaries = []
    load_before = os.getloadavg()[0]
    for mode in args.modes.split(","):
        print(f"{mode}:", flush=True)
        if mode == "autoscale":
            stop_controller(client)
            settle(client, f"{STACK}_predictor", args.min)
            settle(client, f"{STACK}_autoscaler", 1)
            time.sleep(8)  # the controller's first looks: rates need two scrapes
        else:
            stop_controller(client)
            settle(client, f"{STACK}_predictor", args.min if mode == "static-min" else args.max)
        records, samples, duration = run_profile(client, url, profile)
        rows = timeline.seconds(records, samples, duration)
        s = timeline.summarize(mode, rows, args.p99_ms, step_up, step_down)
        summaries.append(s)
        print(f"  replica-seconds {s.replica_seconds:.0f}, p99 under {args.p99_ms:g} ms in {s.p99_ok_share:.0%} "
              f"of seconds, {s.failed} of {s.requests} failed, {s.scale_changes} scale changes, peak "
              f"{s.peak_replicas} after {s.reach_peak_s} s, p99 back after {s.p99_recovered_s} s", flush=True)
    settle(client, f"{STACK}_autoscaler", 1)
    os.makedirs(args.out, exist_ok=True)
    target = f"target-rps {args.target_rps}" if args.target_rps else f"target-inflight {args.target_inflight}"
    load_after = os.getloadavg()[0]
    report = {"profile": profile, "p99_target_ms": args.p99_ms, "load_average_before": load_before,
              "load_average_after": load_after,
              "policy": {"min": args.min, "max": args.max, "target": target, "down_window": args.down_window},
              "runs": [s.to_json() for s in summaries]}
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    md = (f"Step load {' -> '.join(f'{r:g} req/s for {s:g} s' for r, s in profile)}, open loop through the gateway, "
          f"iris-rf at 0.25 CPU per replica (batching off); policy min {args.min}, max {args.max}, {target}, "
          f"down-window {args.down_window}; p99 target {args.p99_ms:g} ms; load average {load_before:.2f} before, "
          f"{load_after:.2f} after, on 2 shared cores.\n\n" + timeline.markdown(summaries))
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(md)
    plot(summaries, profile, os.path.join(args.out, "autoscale.png"), args.p99_ms)
    print(md)


if __name__ == "__main__":
    main()
