"""`swarmml build`."""
import click

from swarmml.build import predictor as builds
from swarmml.build.artifacts import parse_model_option
from swarmml.console import note


@click.command()
@click.option("--model", "model_args", multiple=True, metavar="NAME=PATH",
              help="a model to serve: a .skops file or a model directory (repeatable; PATH alone names it by "
                   "its stem; default: the iris models)")
@click.option("--trust", multiple=True, metavar="TYPE", help="a type the model may load beyond the defaults "
                                                              "(repeatable)")
@click.option("--trust-file", multiple=True, type=click.Path(), metavar="FILE",
              help="types to trust, one per line (repeatable)")
@click.option("--allow-pickle", is_flag=True, help="accept joblib/pickle files (loading them runs their code)")
@click.option("--sklearn-version", default=None, metavar="X.Y.Z",
              help="the scikit-learn that fitted the model, when the artifact doesn't say")
@click.option("--signature", "signature_file", default=None, type=click.Path(), metavar="FILE",
              help="the model's inputs: a JSON signature, or a CSV sample of the training frame")
@click.option("--push", type=str, is_flag=False, flag_value="", default=None, metavar="[REGISTRY[/PREFIX]]",
              help="push to the swarmml cluster's registry, or to REGISTRY with the docker config's login for it, "
                   "and print the reference nodes pull")
@click.option("--tag", default="latest", show_default=True)
@click.option("--base", "base_mode", type=click.Choice(["auto", "public", "local"]), default="auto",
              show_default=True, help="python:3.11-slim, or a Debian base made locally with debootstrap")
@click.option("--model-version", default=None, help="the version the models report (default: the tag, or 1)")
@click.option("--only", type=click.Choice(sorted(builds.IMAGES)), default=None, help="build one image")
def build(model_args, trust, trust_file, allow_pickle, sklearn_version, signature_file, push, tag, base_mode,
          model_version, only):
    """Build the predictor and gateway images; the last line is the predictor's reference."""
    models = builds.ModelOptions([parse_model_option(m) for m in model_args], list(trust), list(trust_file),
                                 allow_pickle, sklearn_version, signature_file)
    # --push alone (flag_value "") is the cluster's registry; a value names another registry.
    result = builds.build(tag=tag, base_mode=base_mode, push=True if push == "" else (push or False),
                          model_version=model_version, names=[only] if only else None, models=models)
    for name, ref in result.built.items():
        note(f"{name}: {result.pushed.get(name, ref)}")
    note(f"built in {result.duration_s:.1f} s; a stack for it: {builds.generate_command(result, tag)}")
    click.echo(result.reference(only or "predictor"))


COMMANDS = [build]
