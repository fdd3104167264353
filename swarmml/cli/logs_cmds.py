"""`swarmml logs`: every task of a stack or service, merged in time order (a thin layer over observe.logstream)."""
import json
import sys
import threading
import time

import click

from swarmml.observe import inference_fetch, inference_logs, logs, logstream
from swarmml.console import note, out
from swarmml.engine import target_client
from swarmml.errors import UsageError
from swarmml.ops import services


@click.command("logs")
@click.argument("name", metavar="STACK|SERVICE")
@click.option("--stack", default=None, help="the stack the service belongs to, when its name is ambiguous")
@click.option("-f", "--follow", is_flag=True, help="keep printing; tasks that start meanwhile (scale, update) join")
@click.option("--since", default=None, metavar="10m|TIME", help="only lines since this long ago, or since a time")
@click.option("-n", "--tail", type=click.IntRange(0), default=None, metavar="N", help="the last N lines of each task")
@click.option("--grep", default=None, metavar="RE", help="only lines matching this regular expression")
@click.option("-t", "--timestamps", is_flag=True, help="show each line's time")
@click.option("--inference", is_flag=True,
              help="SERVICE's inference logs instead: one line per request, from every node's volume")
@click.option("--status", type=click.Choice(["ok", "error"]), default=None,
              help="with --inference: only successful (2xx) or only failed requests")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text",
              help="json: one JSON object per line (time, service, replica, node, task, message; with "
                   "--inference the model service's record and its node)")
def logs_cmd(name: str, stack: str | None, follow: bool, since: str | None, tail: int | None, grep: str | None,
             timestamps: bool, inference: bool, status: str | None, output: str) -> None:
    """The logs of every task of STACK or SERVICE, in time order, each line prefixed with service.replica@node.

    Stopped tasks that Swarm still keeps show their last lines too. With --inference, the requests that
    SERVICE's replicas logged (SWARMML_INFERENCE_LOG), in time order.
    """
    pattern = logs.compile_grep(grep)  # bad input fails before any engine is asked
    since_at = logs.parse_since(since, time.time()) if since else None
    if inference:
        if follow:
            raise UsageError("--inference reads the logs as they are; it can't --follow")
        return _inference(name, stack, since_at, tail, pattern, status, output)
    if status:
        raise UsageError("--status goes with --inference")
    client = target_client()
    services = logstream.resolve_targets(client, name, stack)
    colored = output == "text" and sys.stdout.isatty()
    palette = logs.colors(logstream.short_name(s) for s in services)
    width = [0]

    def show(line: logs.LogLine) -> None:
        if not logs.keep(line, pattern):
            return
        if output == "json":
            sys.stdout.write(json.dumps(line.to_json()) + "\n")
        else:
            width[0] = max(width[0], len(line.source.prefix))
            text = logs.render(line, width[0], palette.get(line.source.service) if colored else None, timestamps)
            if colored:
                out.print(text, soft_wrap=True, highlight=False)
            else:
                sys.stdout.write(text + "\n")
        sys.stdout.flush()

    if not follow:
        for line in logstream.read(client, services, tail=tail, since=since_at):
            show(line)
        return
    stop = threading.Event()
    try:
        for line in logstream.follow(client, services, tail=tail, since=since_at, stop=stop):
            show(line)
    except KeyboardInterrupt:
        stop.set()
    except BrokenPipeError:
        stop.set()


def _inference(name, stack, since_at, tail, pattern, status, output) -> None:
    client = target_client()
    got = inference_fetch.fetch(client, services.find(client, name, stack))
    since = logs.format_time(int(since_at * 1e9)) if since_at is not None else None
    for host, why in sorted(got.unread.items()):
        note(f"node {host}: not read ({why})")
    if got.bad_lines:
        note(f"{got.bad_lines} line(s) that are not JSON records skipped (a replica killed mid-write)")
    try:
        for rec in inference_logs.select(got.records, since, tail, pattern, status):
            sys.stdout.write((json.dumps(rec) if output == "json" else inference_logs.render(rec)) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        pass


COMMANDS = [logs_cmd]
