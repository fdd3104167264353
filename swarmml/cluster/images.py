"""Which images a local cluster runs, and making them when no registry can be reached.

Where the public images can be pulled, they are used as they are. Where
nothing can be pulled (an air-gapped or registry-less machine), swarmml makes
a Debian base with debootstrap and builds its node and registry images on it
from Debian's packages. `mode` forces either path: "public", "local" or "auto".
"""
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources

from swarmml import labels
from swarmml._version import __version__
from swarmml.console import note
from swarmml.engine import host_client
from swarmml.engine import images as engine_images
from swarmml.errors import SwarmmlError, UsageError

MODES = ("auto", "public", "local")
LOCAL_BASE = "swarmml/base:bookworm"
SUITE = "bookworm"


@dataclass(frozen=True)
class ImageSet:
    mode: str  # "public" or "local"
    base: str
    node: str
    registry: str
    registry_data: str  # where that registry image keeps its blobs


def _dockerfile_digest(name):
    """8 hex digits of a packaged Dockerfile: an image built from an older one gets another tag, so it is rebuilt."""
    import hashlib
    return hashlib.sha256((resources.files("swarmml") / "data" / name / "Dockerfile").read_bytes()).hexdigest()[:8]


PUBLIC = ImageSet("public", "python:3.11-slim", "docker:dind", "registry:2", "/var/lib/registry")
LOCAL = ImageSet("local", LOCAL_BASE, f"swarmml/node:{__version__}-{_dockerfile_digest('node')}",
                 f"swarmml/registry:{__version__}", "/var/lib/docker-registry")


def resolve_mode(mode, public_pullable):
    """Pure: the mode to use, given whether the public images could be pulled."""
    if mode not in MODES:
        raise UsageError(f"--images: expected one of {', '.join(MODES)}, got {mode!r}")
    if mode == "auto":
        return "public" if public_pullable else "local"
    return mode


def image_set(client, mode="auto"):
    """Make sure the node and registry images exist; return the set to run."""
    if mode not in MODES:
        raise UsageError(f"--images: expected one of {', '.join(MODES)}, got {mode!r}")
    pullable = mode != "local" and _have_or_pull(client, [PUBLIC.node, PUBLIC.registry])
    if resolve_mode(mode, pullable) == "public":
        if not pullable:
            raise SwarmmlError("the public images docker:dind and registry:2 can't be pulled; use --images local")
        return PUBLIC
    base = ensure_local_base(client)
    for ref, name in ((LOCAL.node, "node"), (LOCAL.registry, "registry")):
        if not engine_images.image_exists(client, ref):
            note(f"building {ref} from {base} (Debian packages, once) ...")
            with resources.as_file(resources.files("swarmml") / "data" / name) as ctx:
                engine_images.build_image(client, str(ctx), ref, buildargs={"BASE_IMAGE": base},
                                          labels={labels.IMAGE: name})
    return LOCAL


def base_image(mode="auto", client=None):
    """The base for the project's own images (predictor, gateway)."""
    client = client or _host()
    if mode not in MODES:
        raise UsageError(f"--base: expected one of {', '.join(MODES)}, got {mode!r}")
    if mode == "local":
        return ensure_local_base(client)
    if _have_or_pull(client, [PUBLIC.base]):
        return PUBLIC.base
    if mode == "public":
        raise SwarmmlError(f"the public image {PUBLIC.base} can't be pulled; use --base local")
    return ensure_local_base(client)


def ensure_local_base(client):
    """Debian bookworm minbase + Python 3, made with debootstrap and docker import (about a minute, once)."""
    if engine_images.image_exists(client, LOCAL_BASE):
        return LOCAL_BASE
    if shutil.which("debootstrap") is None:
        _install_debootstrap()
    note(f"making {LOCAL_BASE} with debootstrap (no registry reachable; about a minute, once) ...")
    with tempfile.TemporaryDirectory(prefix="swarmml-rootfs-") as root:
        cmd = ["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
               SUITE, root]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise SwarmmlError(f"debootstrap failed: {tail[0]}")
        # apt caches make the image bigger and say nothing useful
        shutil.rmtree(os.path.join(root, "var/cache/apt/archives"), ignore_errors=True)
        engine_images.import_rootfs(client, root, LOCAL_BASE,
                                    changes=["ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]'])
    return LOCAL_BASE


def _install_debootstrap():
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SwarmmlError("debootstrap is needed to make a base image without a registry; install it "
                           "(apt-get install debootstrap) and run again as root")
    apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=apt_env)
    done = subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], capture_output=True, text=True,
                          env=apt_env)
    if done.returncode != 0:
        raise SwarmmlError("installing debootstrap failed: " + (done.stderr.strip().splitlines() or ["?"])[-1])


def _have_or_pull(client, refs):
    missing = [r for r in refs if not engine_images.image_exists(client, r)]
    for ref in missing:
        if not engine_images.try_pull(client, ref):
            return False
    return True


def _host():
    return host_client()
