"""The `swarmml` command: a thin click layer over the Python API.

Every command lives in a module of this package named after its area; this
module only assembles them and turns errors into one line for people.
"""
import os
import sys

import click

from swarmml.errors import SwarmmlError


class OneLineErrors(click.Group):
    """Turn user mistakes into one line on stderr, never a traceback.

    Exit code 2 for bad input (click's usage errors and our UsageError),
    1 for other failures we can explain.
    """

    def main(self, args=None, prog_name=None, **extra):
        try:
            return super().main(args=args, prog_name=prog_name, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("swarmml: aborted", err=True)
            sys.exit(130)
        except click.UsageError as exc:
            where = f"{exc.ctx.command_path}: " if exc.ctx is not None else ""
            click.echo(f"swarmml: error: {where}{exc.format_message()}", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            click.echo(f"swarmml: error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except SwarmmlError as exc:
            click.echo(f"swarmml: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("swarmml: interrupted", err=True)
            sys.exit(130)


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="swarmml")
@click.option("--cluster", "cluster_name", default=None, metavar="NAME",
              help="act on this local swarmml cluster (default: DOCKER_HOST, else the one running cluster)")
@click.option("-H", "--host", "host", default=None, metavar="URL",
              help="the engine to act on: unix:///path, tcp://host:port, ssh://user@host[:port] (as docker -H)")
@click.option("--context", "context", default=None, metavar="NAME",
              help="a docker context (overrides DOCKER_HOST and `docker context use`, as docker --context)")
@click.option("-v", "--verbose", is_flag=True, help="say which engine is used and why")
def cli(cluster_name, host, context, verbose):
    """Deploy scikit-learn inference services on Docker Swarm and prove that they scale."""
    if cluster_name:
        os.environ["SWARMML_CLUSTER"] = cluster_name
    if host and context:
        raise click.UsageError("conflicting options: give either --host or --context, not both")
    if host:
        os.environ["SWARMML_HOST"] = host
    if context:
        os.environ["SWARMML_CONTEXT"] = context
    if verbose:
        os.environ["SWARMML_VERBOSE"] = "1"


def _register():
    # Imported here so that each area stays in its own module.
    from swarmml.cli import (autoscale_cmds, build_cmds, cluster_cmds, generate_cmds, logs_cmds, ops_cmds,
                             stack_cmds, top_cmds, verify_cmds)
    for module in (cluster_cmds, build_cmds, generate_cmds, stack_cmds, ops_cmds, verify_cmds, logs_cmds, top_cmds,
                   autoscale_cmds):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main():
    cli()
