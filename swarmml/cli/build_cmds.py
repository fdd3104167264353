"""`swarmml build`."""
import click

from swarmml import build as builds
from swarmml.console import note


@click.command()
@click.option("--push", is_flag=True, help="push to the cluster registry and print the reference nodes pull")
@click.option("--tag", default="latest", show_default=True)
@click.option("--base", "base_mode", type=click.Choice(["auto", "public", "local"]), default="auto",
              show_default=True, help="python:3.11-slim, or a Debian base made locally with debootstrap")
@click.option("--model-version", default="1", show_default=True, help="version the trained models report")
@click.option("--only", type=click.Choice(sorted(builds.IMAGES)), default=None, help="build one image")
def build(push, tag, base_mode, model_version, only):
    """Build the predictor and gateway images; the last line is the predictor's reference."""
    result = builds.build(tag=tag, base_mode=base_mode, push=push, model_version=model_version,
                          names=[only] if only else None)
    for name, ref in result.built.items():
        note(f"{name}: {result.pushed.get(name, ref)}")
    note(f"built in {result.duration_s:.1f} s")
    click.echo(result.reference(only or "predictor"))


COMMANDS = [build]
