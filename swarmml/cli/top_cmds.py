"""`swarmml top`: a live view of a stack (a thin layer over swarmml.observe.topview and swarmml.observe.top)."""
import signal
import time

import click

from swarmml.observe import top as tops
from swarmml.observe import topview
from swarmml.console import emit_json, out
from swarmml.engine import resolve_target, swarm, target_client
from swarmml.errors import NotFound, UsageError


def _only_stack(client) -> str:
    names = sorted(swarm.stacks(client))
    if len(names) == 1:
        return names[0]
    if not names:
        raise NotFound("no stack runs on this swarm; deploy one with `swarmml deploy docker-stack.yml`")
    raise UsageError(f"several stacks run ({', '.join(names)}); name one: `swarmml top STACK`")


@click.command("top")
@click.argument("stack", required=False)
@click.option("-n", "--interval", type=click.FloatRange(0.5, 60), default=2.0, show_default=True,
              help="seconds between readings")
@click.option("--once", is_flag=True, help="one snapshot (two readings an interval apart), then exit")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table",
              help="json: the snapshot on stdout, for scripts (with --once)")
def top_cmd(stack: str | None, interval: float, once: bool, output: str) -> None:
    """A live view of STACK (default: the only stack): per replica requests/s, in-flight, p50/p99, errors,
    CPU and memory; per node tasks, CPU and memory; the rollout when one runs.

    Numbers come from each replica's /metrics and the gateway's stats page (fetched by a probe container
    on the stack's network) and from the engines' container stats.
    """
    if output == "json" and not once:
        raise UsageError("-o json needs --once (one snapshot for scripts)")
    client = target_client()
    stack = stack or _only_stack(client)
    signal.signal(signal.SIGTERM, _interrupt)  # a terminated top removes its probe too
    reader = topview.Reader(client, stack, resolve_target().cluster)
    try:
        prev = reader.read()
        if once:
            time.sleep(max(0.0, interval - (time.time() - prev["time"])))
            snap = tops.snapshot(prev, reader.read())
            if output == "json":
                emit_json(snap)
            else:
                out.print(tops.render(snap))
            return
        _live(reader, prev, interval)
    finally:
        reader.close()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _live(reader: topview.Reader, prev: dict, interval: float) -> None:
    from rich.live import Live
    with Live(tops.render(tops.snapshot(None, prev)), console=out, auto_refresh=False, screen=out.is_terminal) as live:
        started = time.monotonic()
        try:
            while True:
                # Readings start every interval, however long one takes (when it takes longer, at once).
                started = max(started + interval, time.monotonic())
                time.sleep(max(0.0, started - time.monotonic()))
                cur = reader.read()
                live.update(tops.render(tops.snapshot(prev, cur)), refresh=True)
                prev = cur
        except KeyboardInterrupt:
            pass


COMMANDS = [top_cmd]
