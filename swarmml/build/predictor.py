"""`swarmml build`: the predictor image (the user's models, or the default iris ones) and the gateway image.

Users' models are checked on this machine first (swarmml.build.artifacts): nothing
is built until every one of them would load in the image. Both images are
built from package data, so this works from a plain `pip install swarmml`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import resources

from swarmml import labels
from swarmml.build import context as predictor_image
from swarmml.build.artifacts import ModelSource, check_model, check_version_flag, image_sklearn_version, unique_sources
from swarmml.cluster import images
from swarmml.cluster import local as clusters
from swarmml.cluster import registry as registries
from swarmml.console import note
from swarmml.engine import host_client, resolve_target
from swarmml.engine import images as engine_images
from swarmml.engine.errors import PushFailed
from swarmml.errors import SwarmmlError, UsageError

IMAGES = ("predictor", "gateway", "prometheus")
# The models the image trains for itself when no --model is given.
DEFAULT_MODELS = ("iris-logreg", "iris-rf")


@dataclass
class BuildResult:
    base: str
    models: list[str] = field(default_factory=list)  # what the predictor serves
    built: dict[str, str] = field(default_factory=dict)  # name -> local ref
    pushed: dict[str, str] = field(default_factory=dict)  # name -> ref the nodes pull
    duration_s: float = 0.0

    def reference(self, name: str = "predictor") -> str:
        return self.pushed.get(name) or self.built[name]


@dataclass
class ModelOptions:
    """What `--model` and its companion flags say."""
    sources: list[ModelSource] = field(default_factory=list)
    trust: list[str] = field(default_factory=list)  # --trust TYPE
    trust_files: list[str] = field(default_factory=list)  # --trust-file FILE
    allow_pickle: bool = False
    sklearn_version: str | None = None
    signature_file: str | None = None


def build(tag: str = "latest", base_mode: str = "auto", push: bool | str = False, cluster: str | None = None,
          model_version: str | None = None, names: list[str] | None = None,
          models: ModelOptions | None = None) -> BuildResult:
    """Check the models, then build (and push) the images; nothing is built when a check fails.

    push: True for the swarmml cluster's registry, or "REGISTRY[/PREFIX]" for any registry.
    """
    if not tag or any(c in tag for c in " /:@"):
        raise UsageError(f"--tag: expected a plain image tag like 1.2 or latest, got {tag!r}")
    target = registries.parse_target(push) if isinstance(push, str) and push else None
    if push is True:
        cluster = _push_cluster(cluster)
    models = models or ModelOptions()
    names = list(names or IMAGES)
    version = model_version or (tag if tag != "latest" else "1")
    check_version_flag(models.sklearn_version)
    if models.signature_file and len(models.sources) != 1:
        raise UsageError("--signature describes one model; give exactly one --model with it")
    trusted = predictor_image.default_trusted_types() | set(models.trust)
    for path in models.trust_files:
        trusted |= predictor_image.read_trust_file(path)
    checked = [check_model(s, trusted, allow_pickle=models.allow_pickle, sklearn_version=models.sklearn_version,
                           signature_file=models.signature_file) for s in unique_sources(models.sources)]
    sklearn_version = image_sklearn_version(checked)
    if models.allow_pickle and any(m.format == "pickle" for m in checked):
        note("warning: loading a pickle/joblib model runs whatever code it holds; the image allows it only "
             "because of --allow-pickle")
    if sklearn_version:
        predictor_image.check_wheel(sklearn_version, checked)

    started = time.monotonic()
    client = host_client()
    base = images.base_image(base_mode, client)
    result = BuildResult(base, [m.name for m in checked] or list(DEFAULT_MODELS))
    for name in names:
        ref = f"swarmml/{name}:{tag}"
        args = {"BASE_IMAGE": base}
        image_labels = {labels.IMAGE: name}
        if name == "predictor":
            context = predictor_image.prepare(checked, trusted, sklearn_version, version)
            args.update(MODEL_VERSION=version, ALLOW_PICKLE="1" if models.allow_pickle else "0")
            image_labels[labels.MODELS] = ",".join(result.models)
            note(f"building {ref} ({', '.join(result.models)}; base {base}) ...")
            engine_images.build_image(client, context, ref, buildargs=args, labels=image_labels)
        else:
            with resources.as_file(resources.files("swarmml") / "data" / name) as recipe:
                note(f"building {ref} (base {base}) ...")
                engine_images.build_image(client, str(recipe), ref, buildargs=args, labels=image_labels)
        result.built[name] = ref
    if target:
        result.pushed = push_images(client, result.built, target)
    elif push is True:
        result.pushed = push_to_cluster(client, result.built, cluster)
    result.duration_s = time.monotonic() - started
    return result


def push_to_cluster(client, built: dict[str, str], cluster: str | None = None) -> dict[str, str]:
    """Push local refs to a swarmml cluster's registry; returns the refs its nodes pull."""
    return push_images(client, built, clusters.registry(_push_cluster(cluster)))


def _push_cluster(cluster):
    name = cluster or resolve_target().cluster
    if not name:
        raise UsageError("--push needs a swarmml cluster as the target (`swarmml cluster up`, or --cluster NAME), "
                         "or a registry: --push REGISTRY[/PREFIX]")
    return name


def push_images(client, built: dict[str, str], target: registries.Target) -> dict[str, str]:
    """Push local refs (swarmml/<name>:<tag>) to target with the docker config's login for it; returns the refs
    the nodes pull."""
    login = engine_images.registry_login(target.registry)
    pulled = {}
    for key, ref in built.items():
        push_ref, pull_ref = registries.refs(target, ref)
        engine_images.tag_image(client, ref, push_ref)
        note(f"pushing {push_ref} ...")
        try:
            engine_images.push_image(client, push_ref, login)
        except PushFailed as exc:
            raise SwarmmlError(registries.explain_push(target.registry, str(exc), (login or {}).get("username"))) \
                from None
        pulled[key] = pull_ref
    return pulled


def generate_command(result: BuildResult, tag: str) -> str:
    """Pure: the `swarmml generate` line for a stack that serves what was built."""
    parts = ["swarmml generate"]
    if tag != "latest":
        parts.append(f"--tag {tag}")
    if result.models != list(DEFAULT_MODELS):
        parts += [f"--model {m}" for m in result.models]
    return " ".join(parts + ["-o", "stack.yml"])
