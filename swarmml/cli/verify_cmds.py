"""`swarmml verify`."""
import os

import click

from swarmml.console import emit_json, note, table
from swarmml.engine import target_client
from swarmml.errors import Inconclusive, SwarmmlError, UsageError
from swarmml.verify import report as reports
from swarmml.verify import verify as run_verify


def _steps(value):
    if value is None:
        return None  # the default curve, fitted to the free CPU
    try:
        steps = [int(s) for s in value.split(",") if s.strip()] if value else []
    except ValueError:
        raise UsageError(f"--steps: expected replica counts like 1,2,4,6, got {value!r}") from None
    if any(s < 1 for s in steps):
        raise UsageError(f"--steps: replica counts must be at least 1, got {value!r}")
    return steps


@click.command()
@click.argument("service", default="predictor")
@click.option("--stack", default=None, help="the stack, when the service name is in several")
@click.option("--gateway", default="gateway", show_default=True, help="the service whose port fronts SERVICE")
@click.option("--steps", default=None,
              help="replica counts of the curve ('' skips it) [default: 1,2,4,6, less the steps the cluster's free "
                   "CPU can't hold]")
@click.option("--cpus", type=click.FloatRange(0.01, 64), default=0.25, show_default=True,
              help="CPU limit per replica during the curve")
@click.option("--model", default="iris-rf", show_default=True, help="the model the load asks for")
@click.option("--batching", type=click.Choice(["off", "on", "auto"]), default="off", show_default=True,
              help="micro-batching during the curve (off: each request pays a whole predict)")
@click.option("--duration", type=click.FloatRange(1, 600), default=10, show_default=True, help="seconds per step")
@click.option("--repeat", type=click.IntRange(1, 10), default=2, show_default=True,
              help="measure each step this many times, each between two runs of the base (1,2,1,4,1,6,6,1,...)")
@click.option("--connections", type=click.IntRange(1, 4096), default=None, help="[default: 8 per replica]")
@click.option("--rate", type=click.FloatRange(0.1, None), default=None,
              help="open loop: requests/s per replica (the offered load grows with the step)")
@click.option("--min-efficiency", default="0.8", show_default=True,
              help="E(N) threshold, or per step count: 2=0.9,4=0.85,6=0.8")
@click.option("--slo", default=None, help="after the curve, what each step sustains under it, open loop: p99=250ms")
@click.option("--for", "for_load", default=None, help="with --slo: how many replicas this load needs, e.g. 200/s")
@click.option("--drill", type=click.Choice(["node-loss"]), default=None, help="lose a node under load")
@click.option("--node", default="worker", show_default=True, metavar="NAME|leader|gateway|worker",
              help="the node the drill loses: a hostname, the leader, the one holding the entry point, or another")
@click.option("--how", type=click.Choice(["stop", "partition"]), default="stop", show_default=True,
              help="kill the node's container, or cut its network and mend it")
@click.option("--drill-rate", type=click.FloatRange(1, None), default=100, show_default=True,
              help="requests/s during the drill")
@click.option("--max-recovery", type=click.FloatRange(1, None), default=30, show_default=True,
              help="seconds until the desired replicas run again")
@click.option("--max-failed", type=click.FloatRange(0, 100), default=0.1, show_default=True,
              help="percent of the drill's requests that may fail")
@click.option("--fill-idle/--no-fill-idle", default=None,
              help="during the curve, fill the cores a step leaves wholly idle with lowest-priority busy loops: "
                   "a lone replica is not measured beside idle cores that six keep busy [default: on for a "
                   "local cluster]")
@click.option("--report", "report_dir", default=None, type=click.Path(file_okay=False),
              help="write report.json, report.md and scaling.png here")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
def verify(service, stack, gateway, steps, cpus, model, batching, duration, repeat, connections, rate, min_efficiency,
           slo, for_load, drill, node, how, drill_rate, max_recovery, max_failed, fill_idle, report_dir, output):
    """Prove SERVICE scales: placement, every replica answers, golden predictions, the curve, a node-loss drill."""
    report = run_verify(target_client(), service, stack=stack, steps=_steps(steps), cpus=cpus, model=model,
                        duration=duration, connections=connections, rate=rate, min_efficiency=min_efficiency,
                        drill=drill, cluster=os.environ.get("SWARMML_CLUSTER"), gateway=gateway, batching=batching,
                        drill_rate=drill_rate, max_recovery_s=max_recovery, max_failed_pct=max_failed,
                        repeat=repeat, slo=slo, load=for_load, show=(output != "json"), node=node, how=how,
                        fill_idle=fill_idle)
    if report_dir:
        report["files"] = reports.write(report, report_dir)
    if output == "json":
        emit_json(report)
    else:
        table([{"check": c["name"], "ok": "yes" if c["ok"] else "NO", "detail": c["detail"]} for c in report["checks"]],
              ["check", "ok", "detail"])
        if report["steps"]:
            rows = [{**s, "E(N)": reports.with_interval(s["efficiency"], s.get("efficiency_interval")),
                     "spread": reports.spread(s), "E_per_CPU": reports.with_interval(s.get("cpu_efficiency"),
                                                                                     s.get("cpu_efficiency_interval")),
                     "CPU_ms_per_req": reports.ms(s.get("cpu_s_per_request")), "min_E": s.get("threshold"),
                     "limited_by": s.get("bottleneck")} for s in report["steps"]]
            table(rows, ["replicas", "requests_per_s", "spread", "p99_ms", "errors", "CPU_ms_per_req", "E(N)",
                         "E_per_CPU", "min_E", "verdict", "limited_by"],
                  title=f"scaling curve ({cpus} CPU per replica, batching {batching}, medians of {repeat})")
            noise = (report.get("noise") or {}).get("max_difference")
            if noise is not None:
                note(f"the machine's noise: the same step twice in a row differed by up to {noise:.1%}")
            sigma = (report.get("noise") or {}).get("sigma")
            if sigma:
                note(f"one run's noise on this machine: {sigma:.1%} (E(N)'s intervals allow for it)")
            moves = report["steps"][0].get("base_moves")
            if moves:
                note(f"the base moved by up to {max(abs(m - 1) for m in moves):.1%} from one bracket to the next "
                     "(what the brackets can not cancel)")
            for s in report["steps"]:
                if s.get("bottleneck") not in (None, "replicas"):
                    note(f"{s['replicas']} replicas: {s['bottleneck_detail']}")
        for s in report["settings"].get("left_out", []):
            note(f"left out {s['replicas']} replicas: {s['why']}")
        cap = report.get("capacity")
        if cap:
            slo_text = f"p{cap['slo']['percentile']:g} <= {cap['slo']['bound_ms']:g} ms"
            table([{**r, "p_at_it": r["latency_ms"], "missed_at": r["first_failed_per_s"],
                    "sustainable_per_s": f"at least {r['sustainable_per_s']}" if r.get("at_least")
                    else r["sustainable_per_s"]} for r in cap["rows"]],
                  ["replicas", "sustainable_per_s", "per_replica_per_s", "p_at_it", "missed_at", "why", "limited_by"],
                  title=f"capacity under {slo_text} (open loop, rising rate)")
            if cap.get("note"):
                note(cap["note"])
            if cap["first_limit"]:
                note(f"from {cap['first_limit']['replicas']} replicas the limit is the "
                     f"{cap['first_limit']['limited_by']}, not the replicas")
            if cap["for"]:
                note(f"{cap['for']['load_per_s']:g} requests/s under {slo_text}: "
                     + (f"{cap['for']['replicas']} replicas" if cap["for"]["replicas"] else "no answer")
                     + f" ({cap['for']['detail']})")
        d = report.get("drill")
        if d:
            table([drill_row(d)], DRILL_COLUMNS, title="node-loss drill")
            table([{"phase": k, **v} for k, v in d["phases"].items()], ["phase", "from_s", "requests", "failed"])
            note(f"rebalance {_counts(d['rebalance']['before'])} -> {_counts(d['rebalance']['after'])}")
        for p in report.get("files", []):
            note(f"wrote {p}")
    if report["problems"]:
        raise SwarmmlError("verify failed: " + "; ".join(report["problems"]))
    if report["inconclusive"]:
        raise Inconclusive("verify inconclusive: " + "; ".join(report["inconclusive"]))


DRILL_COLUMNS = ["node", "roles", "how", "failed", "requests", "failed_pct", "answers_again_s", "leader_elected_s",
                 "commands_back_s", "recovery_s", "extra_replicas"]


def drill_row(d):
    """One table row for a drill's result (the README's drill table has these columns)."""
    return {"node": d["node"], "roles": ", ".join(d["roles"]) or "-", "how": d["how"], "failed": d["failed"],
            "requests": d["requests"], "failed_pct": d["failed_pct"], "answers_again_s": d["answers_again_s"],
            "leader_elected_s": d["leader_elected_s"] if d["leader_elected_s"] is not None else "-",
            "commands_back_s": d["commands_back_s"], "recovery_s": d["recovery_s"],
            "extra_replicas": (d["duplicates"] or {}).get("left", "-")}


def _counts(per_node):
    return " ".join(f"{n}:{c}" for n, c in sorted((per_node or {}).items())) or "-"


COMMANDS = [verify]
