"""`swarmml generate`: a correct stack file from options, without writing YAML."""
import os

import click

from swarmml.console import note
from swarmml.stack.model import ml_stack


@click.command()
@click.option("--name", default="ml", show_default=True, help="stack name")
@click.option("--registry", default="registry:5000", show_default=True, help="where the nodes pull images")
@click.option("--tag", default="latest", show_default=True)
@click.option("--replicas", type=click.IntRange(0, 1000), default=2, show_default=True)
@click.option("--cpus", type=click.FloatRange(0.01, 64), default=0.5, show_default=True, help="limit per replica")
@click.option("--memory", default="512M", show_default=True, help="limit per replica")
@click.option("--model", "models", multiple=True, help="models to serve (repeatable; default: all in the image)")
@click.option("--gateway/--no-gateway", default=True, show_default=True, help="HAProxy in front of the replicas")
@click.option("--gateway-port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("-o", "--output", "out", default="-", help="file to write (default: stdout)")
def generate(name, registry, tag, replicas, cpus, memory, models, gateway, gateway_port, out):
    """Write the ML stack (predictor behind the gateway) as a compose stack file."""
    from swarmml.stack.units import size_bytes
    from swarmml.errors import UsageError
    try:
        size_bytes(memory)
    except UsageError:
        raise UsageError(f"--memory: expected a size like 512M, got {memory!r}") from None
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cfg = os.path.join(root, "stacks", "gateway", "haproxy.cfg")
    base = os.path.dirname(os.path.abspath(out)) if out != "-" else os.getcwd()
    stack = ml_stack(name, registry, tag, replicas, cpus, memory, tuple(models) or ("iris-logreg", "iris-rf"),
                     gateway, gateway_port, "./" + os.path.relpath(cfg, base))
    text = stack.to_yaml()
    if out == "-":
        click.echo(text, nl=False)
    else:
        with open(out, "w") as f:
            f.write(text)
        note(f"wrote {out}: deploy it with `swarmml deploy {out}`")


COMMANDS = [generate]
