"""`swarmml deploy`, `ls`, `ps`, `rm`, `url`."""
import click

from swarmml.ops import deploy as deploys
from swarmml.ops import placement as placements
from swarmml.ops import services as svcs
from swarmml.console import emit_json, note, out, table, warning
from swarmml.engine import swarm
from swarmml.engine import target_client
from swarmml.stack.plan import rows as plan_rows

OUTPUT = click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--name", default=None, help="stack name (default: the file's top-level name:)")
@click.option("--prune", is_flag=True, help="remove services no longer in the files")
@click.option("--resolve-image", type=click.Choice(deploys.RESOLVE_MODES), default="always", show_default=True)
@click.option("--with-registry-auth", is_flag=True,
              help="send this machine's registry credentials (~/.docker/config.json) to the swarm, so that "
                   "the nodes can pull private images")
@click.option("--env-file", default=None, type=click.Path(dir_okay=False),
              help="variables (default: .env beside the file)")
@click.option("--dry-run", is_flag=True, help="show the plan and stop")
@click.option("--detach", "-d", is_flag=True, help="do not wait for the services to converge")
@click.option("--timeout", type=click.IntRange(1, 3600), default=300, show_default=True, help="seconds to wait")
@OUTPUT
def deploy(files, name, prune, resolve_image, with_registry_auth, env_file, dry_run, detach, timeout, output):
    """Deploy stack FILES (merged in order) like `docker stack deploy`."""
    result = deploys.deploy(list(files), name=name, prune=prune, resolve_image=resolve_image, dry_run=dry_run,
                            detach=detach, timeout=timeout, env_file=env_file, show_progress=(output != "json"),
                            with_registry_auth=with_registry_auth)
    if output == "json":
        emit_json(result.to_json())
    else:
        for w in result.warnings:
            warning(w)
        table(plan_rows(result.plan), ["action", "kind", "name", "changes"], title=f"stack {result.stack}")
        if result.convergence is not None:
            table(placements.rows(result.convergence.placements),
                  ["service", "replicas", "per_node", "image", "problems"], title="placement")
        if dry_run:
            note("dry run: nothing changed")
        elif result.convergence is not None and not result.convergence.ok:
            pass  # the error below says what went wrong
        elif not result.plan.changes_anything:
            note(f"stack {result.stack} is up to date: nothing changed ({result.duration_s:.2f} s)")
        else:
            note(f"stack {result.stack} deployed in {result.duration_s:.1f} s (revision {result.revision})")
    result.raise_if_failed()


@click.command("ls")
@OUTPUT
def ls(output):
    """Stacks on the swarm (swarmml's and docker stack deploy's)."""
    stacks = swarm.stacks(target_client())
    rows = [{"name": n, "services": c} for n, c in sorted(stacks.items())]
    emit_json(rows) if output == "json" else table(rows, ["name", "services"])


@click.command()
@click.argument("stack")
@OUTPUT
def ps(stack, output):
    """Tasks of a stack, with node and state, and replicas per node."""
    result = svcs.status(target_client(), stack)
    if output == "json":
        emit_json(result.to_json())
        return
    table(result.tasks, ["task", "node", "desired", "state", "error"])
    table(placements.rows(result.placements), ["service", "replicas", "per_node", "image", "problems"],
          title="placement")


@click.command()
@click.argument("stack")
def rm(stack):
    """Remove a stack and wait until its networks are gone."""
    removed = deploys.remove_stack(target_client(), stack)
    note(f"removed stack {stack}: {removed['services']} services, {removed['networks']} networks, "
         f"{removed['secrets']} secrets, {removed['configs']} configs")


@click.command()
@click.argument("service")
@click.option("--stack", default=None)
def url(service, stack):
    """Print the base URL where SERVICE's published port answers from here (last line)."""
    out.print(svcs.url(target_client(), service, stack))


COMMANDS = [deploy, ls, ps, rm, url]
