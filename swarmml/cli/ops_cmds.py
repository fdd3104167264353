"""`swarmml scale`, `update`, `rollback`, `rebalance`."""
import click

from swarmml import ops, specs
from swarmml import placement as placements
from swarmml.console import emit_json, note, table
from swarmml.engine import target_client
from swarmml.errors import SwarmmlError, UsageError

OUTPUT = click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
STACK = click.option("--stack", default=None, help="the stack, when a service name is in several")


def _report(result, output):
    if output == "json":
        emit_json(result.to_json())
    else:
        if result.changes:
            table([{"service": s, "field": f, "old": o, "new": n} for s, f, o, n in result.changes],
                  ["service", "field", "old", "new"])
        if result.placements:
            table(placements.rows(result.placements), ["service", "replicas", "per_node", "image", "problems"],
                  title="placement")
        note(f"{result.verb} {'done' if result.ok else 'FAILED'} in {result.duration_s:.1f} s")
    if not result.ok:
        raise SwarmmlError("; ".join(result.problems))


@click.command()
@click.argument("targets", nargs=-1, required=True)
@STACK
@click.option("--detach", "-d", is_flag=True, help="return at once")
@click.option("--timeout", type=click.IntRange(1, 3600), default=300, show_default=True)
@OUTPUT
def scale(targets, stack, detach, timeout, output):
    """Set replicas: `swarmml scale predictor 10` or `swarmml scale predictor=10 gateway=2`."""
    result = ops.scale(target_client(), specs.parse_targets(list(targets)), stack=stack, detach=detach,
                       timeout=timeout, show=(output != "json"))
    _report(result, output)


@click.command()
@click.argument("service")
@STACK
@click.option("--image", default=None)
@click.option("--env", multiple=True, help="KEY=VALUE (repeatable)")
@click.option("--replicas", default=None)
@click.option("--cpus", default=None, help="CPU limit per replica, e.g. 0.25")
@click.option("--memory", default=None, help="memory limit per replica, e.g. 512M")
@click.option("--parallelism", default=None, help="tasks updated at once")
@click.option("--delay", default=None, help="pause between batches, e.g. 2s")
@click.option("--order", type=click.Choice(specs.ORDERS), default=None)
@click.option("--failure-action", type=click.Choice(specs.FAILURE_ACTIONS), default=None)
@click.option("--monitor", default=None, help="how long each new task must stay healthy, e.g. 10s")
@click.option("--force", is_flag=True, help="replace every task even if nothing changed")
@click.option("--detach", "-d", is_flag=True)
@click.option("--timeout", type=click.IntRange(1, 3600), default=600, show_default=True)
@OUTPUT
def update(service, stack, image, env, replicas, cpus, memory, parallelism, delay, order, failure_action, monitor,
           force, detach, timeout, output):
    """A health-gated rolling update; Swarm rolls back by itself when new tasks fail."""
    result = ops.update(target_client(), service, stack=stack, detach=detach, timeout=timeout,
                        show=(output != "json"), image=image, env=env, replicas=replicas, cpus=cpus, memory=memory,
                        parallelism=parallelism, delay=delay, order=order, failure_action=failure_action,
                        monitor=monitor, force=force)
    _report(result, output)


@click.command()
@click.argument("service", required=False)
@click.option("--stack", default=None, help="with no SERVICE: roll the whole stack back")
@click.option("--to", "revision", type=click.IntRange(1, None), default=None, help="stack revision (default: previous)")
@click.option("--detach", "-d", is_flag=True)
@click.option("--timeout", type=click.IntRange(1, 3600), default=600, show_default=True)
@OUTPUT
def rollback(service, stack, revision, detach, timeout, output):
    """Roll SERVICE back to its previous spec, or a whole --stack to a recorded revision."""
    client = target_client()
    if service:
        if revision is not None:
            raise UsageError("--to applies to --stack rollbacks; a service goes back to its previous spec")
        result = ops.rollback(client, service, stack=stack, detach=detach, timeout=timeout, show=(output != "json"))
    elif stack:
        result = ops.rollback_stack(client, stack, to=revision, detach=detach, timeout=timeout,
                                    show=(output != "json"))
    else:
        raise UsageError("rollback: give a SERVICE or --stack STACK")
    _report(result, output)


@click.command()
@click.argument("service", required=False)
@click.option("--stack", default=None)
@click.option("--threshold", type=click.IntRange(1, None), default=1, show_default=True,
              help="replicas a node may be away from an even spread before tasks move")
@click.option("--timeout", type=click.IntRange(1, 3600), default=600, show_default=True)
@OUTPUT
def rebalance(service, stack, threshold, timeout, output):
    """Spread replicas evenly again (Swarm never moves tasks when a node joins or returns)."""
    result = ops.rebalance(target_client(), service, stack=stack, threshold=threshold, timeout=timeout,
                           show=(output != "json"))
    _report(result, output)


COMMANDS = [scale, update, rollback, rebalance]
