"""`swarmml autoscale ...`: status, the loop in the foreground, and the in-cluster controller."""
import time

import click

from swarmml.ops import services as service_names
from swarmml.autoscale import install as installer
from swarmml.build import autoscaler as autoscaler_image
from swarmml.autoscale import status as statuses
from swarmml.autoscale.controller import Controller, line
from swarmml.autoscale.lease import LEASE_NAME
from swarmml.console import emit_json, note, table
from swarmml.engine import configs as engine_configs
from swarmml.engine import networks as engine_networks
from swarmml.engine import services as engine_services
from swarmml.engine import swarm as engine_swarm
from swarmml.engine import target_client

OUTPUT = click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table",
                      help="json: the data on stdout, for scripts")


class ServiceOrCommand(click.Group):
    """`swarmml autoscale SERVICE ...` runs the loop; `swarmml autoscale status|install|...` the subcommands."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=ServiceOrCommand)
def autoscale():
    """Replicas that follow the load (requests in flight per replica), from io.swarmml.autoscale.* labels.

    \b
    swarmml autoscale status [SERVICE] [-o json]
    swarmml autoscale SERVICE [--min N --max N --target-inflight X] [--dry-run]
    swarmml autoscale install | uninstall
    """


@autoscale.command("status")
@click.argument("service", required=False)
@click.option("--stack", default=None, help="the stack the service belongs to, when its name is ambiguous")
@OUTPUT
def status(service, stack, output):
    """Per autoscaled service: the policy, the last signal, the last decisions, and why it does not scale."""
    client = target_client()
    all_services = engine_services.services(client)
    full = service_names.match(all_services, service, stack)["Spec"]["Name"] if service else None
    found = engine_configs.lease(client, LEASE_NAME)
    report = statuses.report(found[2] if found else None, all_services, time.time(), full)
    if output == "json":
        emit_json(report)
        return
    note(f"autoscaler: {report['controller']['state']}: {report['controller']['why']}")
    if not report["services"]:
        note("no service carries io.swarmml.autoscale.* labels")
        return
    table(statuses.rows(report), ["service", "replicas", "min_max", "target", "signal", "last_change", "why"])
    for s in report["services"]:
        if service and s["decisions"]:
            table([{"time": d["time"], "action": d["action"], "replicas": f"{d['current']}->{d['desired']}",
                    "reason": d["reason"]} for d in s["decisions"]], ["time", "action", "replicas", "reason"],
                  title=f"last decisions of {s['service']}")


@autoscale.command("run")
@click.argument("service")
@click.option("--stack", default=None, help="the stack the service belongs to, when its name is ambiguous")
@click.option("--min", "minimum", type=click.IntRange(1, None), default=None, help="override the min label")
@click.option("--max", "maximum", type=click.IntRange(1, None), default=None, help="override the max label")
@click.option("--target-inflight", type=float, default=None, help="override the target-inflight label")
@click.option("--dry-run", is_flag=True, help="print what it would do; change nothing, take no lease")
@click.option("--interval", type=click.FloatRange(0.2, 60), default=None,
              help="seconds per tick [default: the service's interval label, else 2]")
@click.option("--ticks", type=click.IntRange(1, None), default=None, help="stop after this many ticks")
@OUTPUT
def run(service, stack, minimum, maximum, target_inflight, dry_run, interval, ticks, output):
    """Run the autoscaler's loop for SERVICE in the foreground and print each decision.

    It scrapes the replicas at their overlay addresses, so run it where those are reachable (a container on
    the service's network); elsewhere the replicas are unknown, and it says so. Without --dry-run it takes the
    swarm's autoscaler lease first, so it never fights the in-cluster controller.
    """
    client = target_client()
    full = service_names.match(engine_services.services(client), service, stack)["Spec"]["Name"]
    overrides = {k: v for k, v in (("min", minimum), ("max", maximum), ("target_inflight", target_inflight))
                 if v is not None}
    ctl = Controller(client, only=full, overrides=overrides, dry_run=dry_run)

    def show(c, decisions):
        for name, d in decisions.items():
            if output == "json":
                emit_json({"service": name, **d.to_json(), "signal": c.status[name].signal})
            else:
                click.echo(line(d, name))
        for name, st in c.status.items():
            if st.error:
                click.echo(f"{name}: {st.error}", err=True)
        if not c.holding:
            click.echo(f"standby: {c.lease_note}", err=True)

    ctl.run(interval=interval, show=show, ticks=ticks)


@autoscale.command("install")
@click.option("--tag", default="latest", show_default=True, help="tag of the autoscaler image to build")
@click.option("--image", default=None, help="use this image (already in a registry the nodes reach); no build")
@click.option("--network", "networks", multiple=True, metavar="NAME",
              help="networks to join (default: those of every autoscaled service)")
@click.option("--base", "base_mode", type=click.Choice(["auto", "local", "public"]), default="auto",
              show_default=True, help="the base image, as for swarmml build")
@click.option("-d", "--detach", is_flag=True,
              help="return once the service is created, without waiting for the controller's first look")
def install(tag, image, networks, base_mode, detach):
    """Build the autoscaler image from this swarmml, push it to the cluster, and run it on a manager.

    Waits until the controller runs and has looked at the autoscaled services once.
    The service mounts the manager's docker socket: it can do anything the Docker API can on that swarm.
    """
    client = target_client()
    engine_swarm.require_manager(client)
    ref = image or autoscaler_image.build_and_push(tag=tag, base_mode=base_mode)
    done, nets = installer.install(client, ref, list(networks), wait=not detach)
    names = engine_networks.network_names(client)
    note(f"{done} service {installer.SERVICE} ({ref}) on a manager, on {', '.join(names.get(n, n) for n in nets)}")


@autoscale.command("uninstall")
def uninstall():
    """Remove the autoscaler service (replicas stay where it left them)."""
    gone = installer.uninstall(target_client())
    note(f"removed service {installer.SERVICE}" if gone else f"no service {installer.SERVICE} runs")


COMMANDS = [autoscale]
