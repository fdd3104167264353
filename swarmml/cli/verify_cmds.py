"""`swarmml verify`."""
import click

from swarmml.console import emit_json, note, table
from swarmml.engine import target_client
from swarmml.errors import SwarmmlError, UsageError
from swarmml.verify import report as reports
from swarmml.verify import verify as run_verify


def _steps(value):
    try:
        steps = [int(s) for s in value.split(",") if s.strip()] if value else []
    except ValueError:
        raise UsageError(f"--steps: expected replica counts like 1,2,4,6, got {value!r}") from None
    if any(s < 1 for s in steps):
        raise UsageError(f"--steps: replica counts must be at least 1, got {value!r}")
    return steps


@click.command()
@click.argument("service", default="predictor")
@click.option("--stack", default=None)
@click.option("--gateway", default="gateway", show_default=True, help="the service whose port fronts SERVICE")
@click.option("--steps", default="1,2,4,6", show_default=True, help="replica counts of the curve ('' to skip)")
@click.option("--cpus", type=click.FloatRange(0.01, 64), default=0.25, show_default=True, help="CPU limit per replica")
@click.option("--model", default="iris-rf", show_default=True)
@click.option("--batching", type=click.Choice(["off", "on", "auto"]), default="off", show_default=True,
              help="micro-batching during the curve (off: predict cost dominates each request)")
@click.option("--duration", type=click.FloatRange(1, 600), default=10, show_default=True, help="seconds per step")
@click.option("--connections", type=click.IntRange(1, 1024), default=None, help="default: 8 per replica")
@click.option("--rate", type=click.FloatRange(1, None), default=None, help="open loop at this many requests/s")
@click.option("--min-efficiency", type=click.FloatRange(0, 1), default=0.8, show_default=True)
@click.option("--drill", type=click.Choice(["node-loss"]), default=None)
@click.option("--report", "report_dir", default=None, type=click.Path(file_okay=False), help="write report files here")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
def verify(service, stack, gateway, steps, cpus, model, batching, duration, connections, rate, min_efficiency, drill,
           report_dir, output):
    """Prove SERVICE scales: placement, every replica answers, golden predictions, throughput curve."""
    import os
    report = run_verify(target_client(), service, stack=stack, steps=_steps(steps), cpus=cpus, model=model,
                        duration=duration, connections=connections, rate=rate, min_efficiency=min_efficiency,
                        drill=drill, cluster=os.environ.get("SWARMML_CLUSTER"), gateway=gateway, batching=batching,
                        show=(output != "json"))
    if report_dir:
        report["files"] = reports.write(report, report_dir)
    if output == "json":
        emit_json(report)
    else:
        table([{"check": c["name"], "ok": "yes" if c["ok"] else "NO", "detail": c["detail"]} for c in report["checks"]],
              ["check", "ok", "detail"])
        if report["steps"]:
            table(report["steps"], ["replicas", "requests_per_s", "p50_ms", "p95_ms", "p99_ms", "errors", "efficiency"],
                  title="scaling curve")
        if report.get("drill"):
            d = report["drill"]
            note(f"node-loss drill: stopped {d['node']}, {d['failed']}/{d['requests']} requests failed "
                 f"({d['failed_pct']}%), recovered in {d['recovery_s']} s; {d['rebalance']}")
        for p in report.get("files", []):
            note(f"wrote {p}")
    if not report["ok"]:
        raise SwarmmlError("verify failed: " + "; ".join(report["problems"]))


COMMANDS = [verify]
