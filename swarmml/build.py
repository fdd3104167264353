"""`swarmml build`: the project's images (predictor, gateway), and pushing them to a cluster registry.

Wheels for the predictor are downloaded on this machine into its build
context, because pip inside a container may not reach PyPI over HTTPS.
"""
import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

from swarmml import images
from swarmml.console import note
from swarmml.engine import host_client, resolve_target
from swarmml.engine import nodes as io
from swarmml.errors import SwarmmlError, UsageError

# name -> build context, relative to the project root
IMAGES = {"predictor": "model_service", "gateway": "stacks/gateway"}
PYTHON_TAGS = ["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--abi", "abi3",
               "--abi", "none", "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64",
               "--platform", "manylinux_2_28_x86_64"]


@dataclass
class BuildResult:
    base: str
    built: dict = field(default_factory=dict)  # name -> local ref
    pushed: dict = field(default_factory=dict)  # name -> ref the nodes pull
    duration_s: float = 0.0

    def reference(self, name="predictor"):
        return self.pushed.get(name) or self.built[name]


def project_root(start=None):
    """The directory holding model_service/Dockerfile: cwd, or the checkout swarmml runs from."""
    candidates = [start or os.getcwd(), os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
    for c in candidates:
        if os.path.exists(os.path.join(c, "model_service", "Dockerfile")):
            return c
    raise UsageError("model_service/Dockerfile not found here; run `swarmml build` from the swarmml checkout")


def prepare_wheels(context):
    """Download the wheels named by requirements.txt once (re-done when it changes)."""
    req = os.path.join(context, "requirements.txt")
    wheels = os.path.join(context, "wheels")
    digest = hashlib.sha256(open(req, "rb").read()).hexdigest()
    stamp = os.path.join(wheels, ".requirements.sha256")
    if os.path.exists(stamp) and open(stamp).read() == digest:
        return wheels
    os.makedirs(wheels, exist_ok=True)
    note("downloading wheels for the predictor image (on this machine, once) ...")
    done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                           "--only-binary=:all:", *PYTHON_TAGS, "-d", wheels, "-r", req],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SwarmmlError("downloading wheels failed: " + (done.stderr.strip().splitlines() or ["?"])[-1])
    with open(stamp, "w") as f:
        f.write(digest)
    return wheels


def build(tag="latest", base_mode="auto", push=False, cluster=None, model_version="1", names=None, root=None):
    if not tag or any(c in tag for c in " /:@"):
        raise UsageError(f"--tag: expected a plain image tag like 1.2 or latest, got {tag!r}")
    started = time.monotonic()
    root = root or project_root()
    client = host_client()
    base = images.base_image(base_mode, client)
    result = BuildResult(base)
    for name in names or IMAGES:
        context = os.path.join(root, IMAGES[name])
        if not os.path.exists(os.path.join(context, "Dockerfile")):
            raise SwarmmlError(f"{IMAGES[name]}/Dockerfile is missing")
        args = {"BASE_IMAGE": base}
        if name == "predictor":
            prepare_wheels(context)
            args["MODEL_VERSION"] = str(model_version)
        ref = f"swarmml/{name}:{tag}"
        note(f"building {ref} (base {base}) ...")
        io.build_image(client, context, ref, buildargs=args, labels={"io.swarmml.image": name})
        result.built[name] = ref
    if push:
        result.pushed = push_to_cluster(client, result.built, cluster)
    result.duration_s = time.monotonic() - started
    return result


def push_to_cluster(client, built, cluster=None):
    """Push local refs to a swarmml cluster's registry; returns the refs its nodes pull."""
    from swarmml import cluster as clusters
    name = cluster or resolve_target().cluster
    if not name:
        raise UsageError("--push needs a swarmml cluster as the target (`swarmml cluster up`, or --cluster NAME); "
                         "for another registry, docker tag and push the built images yourself")
    reg = clusters.registry(name)
    pulled = {}
    for key, ref in built.items():
        repo_tag = ref  # swarmml/<name>:<tag>
        push_ref = f"{reg.push_prefix}/{repo_tag}"
        io.tag_image(client, ref, push_ref)
        note(f"pushing {push_ref} ...")
        io.push_image(client, push_ref)
        pulled[key] = f"{reg.pull_prefix}/{repo_tag}"
    return pulled


def build_and_push(cluster, tag="latest"):
    """For tests and scripts: build both images and push them; returns {name: ref the nodes pull}."""
    return build(tag=tag, push=True, cluster=cluster).pushed
