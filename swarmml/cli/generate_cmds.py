"""`swarmml generate`: a correct stack file from options, without writing YAML."""
import os
from importlib import resources

import click

from swarmml.console import note
from swarmml.errors import UsageError
from swarmml.stack.model import DEFAULT_MODELS, DEFAULT_REGISTRY, DEFAULT_TAG, ml_stack
from swarmml.stack.units import size_bytes

PROMETHEUS_FILES = ("prometheus.yml", "rules.yml")


@click.command()
@click.option("--name", default="ml", show_default=True, help="stack name")
@click.option("--image", default=None, help="predictor image (default: <registry>/swarmml/predictor:<tag>)")
@click.option("--registry", default=DEFAULT_REGISTRY, show_default=True, help="where the nodes pull images")
@click.option("--tag", default=DEFAULT_TAG, show_default=True)
@click.option("--replicas", type=click.IntRange(0, 1000), default=2, show_default=True)
@click.option("--cpus", type=click.FloatRange(0.01, 64), default=0.5, show_default=True, help="limit per replica")
@click.option("--memory", default="512M", show_default=True, help="limit per replica")
@click.option("--model", "models", multiple=True, metavar="NAME",
              help=f"a model to serve (repeatable; default: {', '.join(DEFAULT_MODELS)})")
@click.option("--gateway/--no-gateway", default=True, show_default=True, help="HAProxy in front of the replicas")
@click.option("--gateway-port", type=click.IntRange(1, 65535), default=8080, show_default=True,
              help="published in host mode on the node that runs the gateway")
@click.option("--prometheus/--no-prometheus", default=True, show_default=True,
              help="Prometheus scraping every replica and gateway")
@click.option("--prometheus-image", default=None,
              help="Prometheus's image, such as prom/prometheus:v2.53.0 (default: <registry>/swarmml/prometheus:<tag>)")
@click.option("-o", "--output", "out", default="-", help="file to write (default: stdout)")
def generate(name, image, registry, tag, replicas, cpus, memory, models, gateway, gateway_port, prometheus,
             prometheus_image, out):
    """Write the ML stack (predictor replicas behind the gateway) as a compose stack file."""
    try:
        size_bytes(memory)
    except UsageError:
        raise UsageError(f"--memory: expected a size like 512M, got {memory!r}") from None
    config_ref = prometheus_ref = None
    # Relative to the written file, as the loader and docker/cli resolve it.
    base = os.path.dirname(os.path.abspath(out)) if out != "-" else os.getcwd()
    if gateway:
        config_ref = _relative(_packaged(base, "gateway", ("haproxy.cfg",)), base)
    if prometheus:
        prometheus_ref = _relative(_packaged(base, "prometheus", PROMETHEUS_FILES), base)
    stack = ml_stack(name, registry, tag, replicas, cpus, memory, tuple(models) or DEFAULT_MODELS,
                     gateway, gateway_port, os.path.join(config_ref, "haproxy.cfg") if config_ref else None,
                     image=image, prometheus=prometheus, prometheus_dir=prometheus_ref,
                     prometheus_image=prometheus_image)
    text = stack.to_yaml()
    if out == "-":
        click.echo(text, nl=False)
        return
    try:
        with open(out, "w") as f:
            f.write(text)
    except OSError as exc:
        raise UsageError(f"-o {out}: can't write ({exc.strerror})") from None
    note(f"wrote {out}: deploy it with `swarmml deploy {out}`")


def _relative(path, base):
    rel = os.path.relpath(path, base)
    return rel if rel.startswith("..") else "./" + rel


def _packaged(base, kind, names):
    """The directory of a service's config files (gateway: haproxy.cfg; prometheus: its two): the
    checkout's stacks/<kind>, else the packaged files written beside the stack file."""
    checkout = os.path.join(os.getcwd(), "stacks", kind)
    if all(os.path.isfile(os.path.join(checkout, n)) for n in names):
        return checkout
    directory = os.path.join(base, kind)
    for n in names:
        path = os.path.join(directory, n)
        if os.path.exists(path):
            continue
        try:
            os.makedirs(directory, exist_ok=True)
            with open(path, "wb") as f:
                f.write((resources.files("swarmml") / "data" / kind / n).read_bytes())
        except OSError as exc:
            raise UsageError(f"--{kind}: can't write {path} ({exc.strerror})") from None
        note(f"wrote {path}: the stack mounts it ({kind})")
    return directory


COMMANDS = [generate]
