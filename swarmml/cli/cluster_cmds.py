"""`swarmml cluster ...` and `swarmml doctor`."""
import click

from swarmml.cluster import local as clusters
from swarmml.cluster import doctor as doctors
from swarmml.cluster import ssh as ssh_cluster
from swarmml.console import emit_json, err, note, out, table
from swarmml.errors import SwarmmlError

OUTPUT = click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table",
                      help="table for people, json for scripts")
NAME = click.option("--name", default="local", show_default=True, help="cluster name")
NODE_COLUMNS = ["node", "state", "role", "availability", "engine", "addr", "tasks", "container"]


@click.group()
def cluster():
    """A local multi-node Swarm (Docker-in-Docker) with its own registry (up/down), or one on your own
    machines over SSH (create/destroy)."""


@cluster.command()
@NAME
@click.option("--nodes", type=click.IntRange(1, clusters.MAX_NODES), default=3, show_default=True)
@click.option("--managers", type=click.IntRange(1, clusters.MAX_NODES), default=None,
              help="default: 3 with 3 nodes or more (a quorum that survives losing one), else 1")
@click.option("--images", "image_mode", type=click.Choice(["auto", "public", "local"]), default="auto",
              show_default=True, help="public images, or ones built locally from Debian packages")
@click.option("--expose", default="", metavar="ssh,tls",
              help="the manager also answers over SSH and on the engine's TLS port 2376 (mutual TLS), "
                   "on the cluster's bridge and 127.0.0.1 only")
@click.option("--registry-auth", is_flag=True,
              help="the registry asks for a login (htpasswd) over TLS, at an address the nodes and this machine "
                   "share; nodes pull with `deploy --with-registry-auth`")
@OUTPUT
def up(name, nodes, managers, image_mode, expose, registry_auth, output):
    """Start the cluster (or add nodes to it); a running cluster is left as it is, except that it gets
    --expose and --registry-auth in place (its registry, then its managers one at a time, are run again)."""
    result = clusters.up(name, nodes, managers, image_mode, expose=expose, registry_auth=registry_auth,
                         show_progress=output != "json" and err.is_terminal)
    if output == "json":
        emit_json({"already_up": result.already_up, "created": result.created, "recreated": result.recreated,
                   "duration_s": round(result.duration_s, 2), **result.status})
        return
    if result.already_up:
        note(f"cluster {name!r} is already up ({len(result.status['nodes'])} nodes); nothing changed")
    else:
        note(f"cluster {name!r} up in {result.duration_s:.1f} s; started: {', '.join(result.created) or 'nothing'}")
    if result.recreated:
        note(f"run again in place, one at a time: {', '.join(result.recreated)}; the swarm, its stacks and the "
             "registry's images are kept")
    if clusters.registry_container(name) in result.recreated:
        note("services deployed before keep the images their nodes have; to pull anew, push to the address "
             "below and deploy with --with-registry-auth")
    table(result.status["nodes"], NODE_COLUMNS)
    if not result.already_up:
        _print_doctor(name)
    note(f'next: eval "$(swarmml cluster env --name {name})"; docker node ls')
    login = result.status["registry"].get("login")
    if login:
        note(f"registry {result.status['registry']['push_prefix']} asks for a login: "
             f"docker login {result.status['registry']['push_prefix']} -u {login['user']} --password-stdin "
             f"< {login['password_file']}")
    if expose:
        via = "tls" if "tls" in expose else "ssh"
        note(f'remotely: eval "$(swarmml cluster env --name {name} --via {via})", or `swarmml cluster context '
             f'--name {name} --via {via}` for docker --context swarmml-{name}')


@cluster.command()
@NAME
@click.option("--via", type=click.Choice(["socket", "ssh", "tls"]), default="socket", show_default=True,
              help="its unix socket, or SSH / mutual TLS (a cluster started with --expose)")
def env(name, via):
    """Print `export DOCKER_HOST=...` (and TLS settings) for this cluster's manager."""
    click.echo(clusters.env(name, None if via == "socket" else via))


@cluster.command("context")
@NAME
@click.option("--via", type=click.Choice(["tls", "ssh"]), default="tls", show_default=True)
def context_cmd(name, via):
    """Create (or refresh) docker context swarmml-NAME for this cluster's manager, over TLS or SSH."""
    ctx = clusters.context(name, via)
    note(f"context {ctx} written; try: docker --context {ctx} node ls, or `docker context use {ctx}`")


@cluster.command()
@NAME
@OUTPUT
def status(name, output):
    """Nodes, state, role, availability, engine version and tasks per node."""
    st = clusters.status(name)
    if output == "json":
        emit_json(st)
        return
    table(st["nodes"], NODE_COLUMNS, title=f"cluster {name}")
    reg = st["registry"]
    login = f"; login: user {reg['login']['user']}, password in {reg['login']['password_file']}" \
        if reg.get("login") else ""
    out.print(f"registry: {reg['container']}, push to {reg['push_prefix']}, nodes pull from {reg['pull_prefix']}"
              f"{login}")


@cluster.command()
@NAME
def down(name):
    """Remove the containers, networks and volumes this cluster made, and nothing else."""
    removed = clusters.down(name)
    note(f"cluster {name!r} removed: {removed['containers']} containers, {removed['networks']} networks, "
         f"{removed['volumes']} volumes")


HOST_COLUMNS = ["host", "role", "action", "engine", "addr", "error"]


@cluster.command()
@click.argument("name")
@click.option("--ssh", "ssh", multiple=True, required=True, metavar="[USER@]HOST[:PORT]",
              help="a machine to make a node, reached over SSH (once per host; the first --managers are managers)")
@click.option("--managers", type=click.IntRange(1, 99), default=None,
              help="how many of the hosts, in --ssh order, are managers (default: 3 with 3 hosts or more, else 1)")
@click.option("--identity", "-i", default=None, metavar="KEY", help="the SSH private key (default: ssh-agent, "
              "~/.ssh/config and ~/.ssh/id_*)")
@click.option("--label", "labels", multiple=True, metavar="HOST:KEY=VALUE", help="a node label (repeatable)")
@click.option("--advertise-iface", default=None, metavar="IFACE",
              help="the interface whose address the nodes use between them (default: the one SSH reached)")
@click.option("--force", is_flag=True, help="a host already in another swarm leaves it and joins this one")
@OUTPUT
def create(name, ssh, managers, identity, labels, advertise_iface, force, output):
    """Form a Swarm on your own machines over SSH: install the engine where none runs, init, join, label.

    A second run changes nothing; with one more --ssh it adds that host. The cluster becomes docker
    context swarmml-NAME (`swarmml --context swarmml-NAME deploy ...`).
    """
    result = ssh_cluster.create(name, list(ssh), managers, identity, list(labels), advertise_iface, force,
                                show_progress=output != "json" and err.is_terminal)
    rows = [vars(h) for h in result.hosts]
    if output == "json":
        emit_json({"name": name, "context": result.context, "changed": result.changed,
                   "duration_s": round(result.duration_s, 2), "hosts": rows})
    else:
        table(rows, HOST_COLUMNS, title=f"cluster {name}")
        if result.context and not result.changed:
            note(f"cluster {name!r} is already formed on these hosts; nothing changed")
        elif result.context:
            note(f"cluster {name!r} formed in {result.duration_s:.1f} s; next: swarmml --context {result.context} "
                 "deploy docker-stack.yml")
    _fail_hosts(result.errors(), len(result.hosts))


def _fail_hosts(errors, total):
    if len(errors) == 1:
        raise SwarmmlError(errors[0])
    if errors:
        raise SwarmmlError(f"{len(errors)} of {total} hosts failed: " + "; ".join(errors))


@cluster.command()
@click.argument("name")
@click.option("--keep-engine/--remove-engine", default=True, show_default=True,
              help="--remove-engine also stops and purges the engines that `cluster create` installed")
@OUTPUT
def destroy(name, keep_engine, output):
    """Every host of a `cluster create` cluster leaves the swarm; its context goes. The engines stay."""
    result = ssh_cluster.destroy(name, keep_engine, show_progress=output != "json" and err.is_terminal)
    rows = [vars(h) for h in result.hosts]
    if output == "json":
        emit_json({"name": name, "context_removed": result.context_removed, "hosts": rows})
    else:
        table(rows, ["host", "role", "action", "error"], title=f"cluster {name}")
        if result.context_removed:
            note(f"cluster {name!r} destroyed: its hosts are in no swarm; context swarmml-{name} removed")
    _fail_hosts(result.errors(), len(result.hosts))


@cluster.command("stop-node")
@NAME
@click.argument("node")
def stop_node(name, node):
    """Stop one node's container (a failure drill)."""
    note(f"stopped {clusters.stop_node(name, node)}")


@cluster.command("start-node")
@NAME
@click.argument("node")
def start_node(name, node):
    """Start a stopped node and wait until the swarm sees it ready."""
    note(f"started {clusters.start_node(name, node)}")


def _print_doctor(cluster_name=None):
    _, found = doctors.run(cluster_name)
    marks = {"ok": "[green]  ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}
    for f in found:
        note(f"{marks[f.level]} {f.check:<9} {f.message}")
    return found


@click.command()
@click.option("--cluster", "cluster_name", default=None,
              help="a local cluster, or one made by `cluster create` (each host's checks over SSH); "
                   "default: the engine in use")
@OUTPUT
def doctor(cluster_name, output):
    """Check the engine, swarm, routing mode (IPVS), disk and registry."""
    if output == "json":
        facts, found = doctors.run(cluster_name)
        emit_json(doctors.as_json(facts, found))
    else:
        found = _print_doctor(cluster_name)
    if any(f.level == "fail" for f in found):
        raise SystemExit(1)


COMMANDS = [cluster, doctor]
