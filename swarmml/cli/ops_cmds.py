"""`swarmml scale`, `update`, `rollback`, `rebalance`: thin click commands over swarmml.ops."""
import click

from swarmml import ops
from swarmml.ops import placement as placements
from swarmml.console import emit_json, note, table
from swarmml.engine import target_client
from swarmml.errors import UsageError
from swarmml.ops.rebalance import STRATEGIES
from swarmml.ops.update import FAILURE_ACTIONS, ORDERS, check_options

OUTPUT = click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table",
                      help="json: the typed result on stdout, for scripts")
STACK = click.option("--stack", default=None, help="the stack the service belongs to, when its name is ambiguous")
DETACH = click.option("--detach", "-d", is_flag=True, help="return once the change is submitted, without waiting")


def _short(value, width=60):
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _report(result, output):
    if output == "json":
        emit_json(result.to_json())
    else:
        if result.changes:
            table([{"service": c.service, "field": c.field, "old": _short(c.old), "new": _short(c.new)}
                   for c in result.changes], ["service", "field", "old", "new"], title="changes")
        if result.placements:
            table(placements.rows(result.placements), ["service", "replicas", "per_node", "image", "problems"],
                  title="placement")
        phases = ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in result.timings.items() if k.endswith("_s"))
        state = "submitted" if result.detached else "done" if result.ok else "FAILED"
        note(f"{result.verb} {state} in {result.duration_s:.1f} s" + (f" ({phases})" if phases else ""))
    result.raise_if_failed()


# Unknown options pass through as targets, so that `scale predictor -1` is answered about the -1.
@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("targets", nargs=-1, required=True, metavar="SERVICE REPLICAS | SERVICE=REPLICAS...")
@STACK
@DETACH
@click.option("--timeout", type=click.IntRange(1, 3600), default=300, show_default=True, help="seconds to wait")
@OUTPUT
def scale(targets, stack, detach, timeout, output):
    """Set replicas and wait until they run: `swarmml scale predictor 10`, `swarmml scale predictor=4 gateway=2`.

    Prints the replicas per node; tasks that can't be placed are reported with the scheduler's reason.
    """
    wanted = ops.parse_targets(targets)  # bad input fails before any engine is asked
    result = ops.scale(target_client(), wanted, stack=stack, detach=detach, timeout=timeout,
                       show=(output != "json"))
    _report(result, output)


@click.command()
@click.argument("service")
@STACK
@click.option("--image", default=None, help="new image; checked in its registry and pinned by digest")
@click.option("--env", multiple=True, metavar="KEY=VALUE", help="set an environment variable (repeatable)")
@click.option("--replicas", default=None, help="replicas, in the same rolling update")
@click.option("--cpus", default=None, help="CPU limit per replica, e.g. 0.5")
@click.option("--memory", default=None, help="memory limit per replica, e.g. 512M")
@click.option("--parallelism", default=None, help="tasks updated at once (0: all)")
@click.option("--delay", default=None, help="pause between batches, e.g. 2s")
@click.option("--order", type=click.Choice(ORDERS), default=None,
              help="start-first: start the new task before stopping the old (no lost capacity)")
@click.option("--failure-action", type=click.Choice(FAILURE_ACTIONS), default=None,
              help="what Swarm does when a new task fails (rollback: restore the previous spec)")
@click.option("--monitor", default=None, help="how long each new task must keep running after it started, e.g. 10s")
@click.option("--force", is_flag=True, help="replace every task even if nothing else changed")
@click.option("--no-resolve-image", "no_resolve", is_flag=True,
              help="don't check --image in its registry (images loaded on the nodes by hand)")
@DETACH
@click.option("--timeout", type=click.IntRange(1, 3600), default=600, show_default=True, help="seconds to wait")
@OUTPUT
def update(service, stack, image, env, replicas, cpus, memory, parallelism, delay, order, failure_action, monitor,
           force, no_resolve, detach, timeout, output):
    """A health-gated rolling update, batch by batch.

    A new task counts as started once its healthcheck passes. When new tasks fail and the failure action is
    rollback, Swarm restores the previous spec by itself; this command waits for that, then exits 1 saying
    what failed (the task's error, its healthcheck output or its last log line).
    """
    options = dict(image=image, env=env, replicas=replicas, cpus=cpus, memory=memory, parallelism=parallelism,
                   delay=delay, order=order, failure_action=failure_action, monitor=monitor, force=force)
    check_options(**options)  # bad input fails before any engine is asked
    result = ops.update(target_client(), service, stack=stack, detach=detach, timeout=timeout,
                        show=(output != "json"), resolve=not no_resolve, **options)
    if not result.changes and output != "json":
        note(f"{service}: nothing to change")
    _report(result, output)


@click.command()
@click.argument("service", required=False)
@click.option("--stack", default=None, help="with SERVICE: its stack; alone: roll the whole stack back")
@click.option("--to", "revision", type=click.IntRange(1, None), default=None,
              help="stack revision to return to (default: the one before the newest)")
@click.option("--list", "list_only", is_flag=True, help="list the stack's kept revisions and change nothing")
@DETACH
@click.option("--timeout", type=click.IntRange(1, 3600), default=600, show_default=True, help="seconds to wait")
@OUTPUT
def rollback(service, stack, revision, list_only, detach, timeout, output):
    """Roll SERVICE back to its previous spec, or a whole --stack to a recorded revision.

    Every swarmml deploy that changes a stack records its specs in the cluster (the last 10);
    `swarmml rollback --stack ml --list` shows them.
    """
    if service and (revision is not None or list_only):
        raise UsageError("--to and --list apply to a whole stack (rollback --stack STACK); "
                         "a service goes back to its previous spec")
    if not service and not stack:
        raise UsageError("rollback: give a SERVICE, or --stack STACK for the whole stack")
    client = target_client()
    if service:
        result = ops.rollback(client, service, stack=stack, detach=detach, timeout=timeout, show=(output != "json"))
    elif stack:
        if list_only:
            found = ops.list_revisions(client, stack)
            if output == "json":
                emit_json([{"revision": r.number, "created_at": r.created_at, "images": r.images} for r in found])
            else:
                table([{"revision": r.number, "created": r.created_at[:19].replace("T", " "),
                        "images": " ".join(f"{n.split('_', 1)[-1]}={i.split('/')[-1].split('@')[0]}"
                                           for n, i in sorted(r.images.items()))} for r in found],
                      ["revision", "created", "images"], title=f"revisions of {stack}")
            return
        result = ops.rollback_stack(client, stack, to=revision, detach=detach, timeout=timeout,
                                    show=(output != "json"))
    _report(result, output)


@click.command()
@click.argument("service", required=False)
@click.option("--stack", default=None, help="with SERVICE: its stack; alone: every replicated service of the stack")
@click.option("--threshold", type=click.IntRange(1, None), default=1, show_default=True,
              help="move tasks only when a node is this many replicas away from an even spread")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="scale", show_default=True,
              help="scale: add replicas on the emptier nodes then remove from the fullest (moves exactly the "
                   "surplus); force: a start-first forced update of every task")
@click.option("--dry-run", is_flag=True, help="measure and report, move nothing")
@click.option("--timeout", type=click.IntRange(1, 3600), default=600, show_default=True, help="seconds to wait")
@OUTPUT
def rebalance(service, stack, threshold, strategy, dry_run, timeout, output):
    """Spread replicas evenly again (Swarm never moves tasks when a node joins or comes back)."""
    if not service and not stack:
        raise UsageError("rebalance: give a SERVICE or --stack STACK")
    result = ops.rebalance(target_client(), service, stack=stack, threshold=threshold, strategy=strategy,
                           timeout=timeout, show=(output != "json"), dry_run=dry_run)
    if output != "json":
        moved = set(result.moved)
        rows = [{"service": i.service, "per_node": " ".join(f"{n}:{i.per_node.get(n, 0)}" for n in i.eligible),
                 "spread": i.spread, "action": ("moved" if i.service in moved else
                                                "would move" if dry_run and i.spread >= threshold else
                                                "below threshold")}
                for i in result.before]
        table(rows, ["service", "per_node", "spread", "action"], title=f"imbalance before (threshold {threshold})")
    _report(result, output)


COMMANDS = [scale, update, rollback, rebalance]
