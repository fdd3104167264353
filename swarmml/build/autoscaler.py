"""The autoscaler's image: `python -m swarmml.autoscale.controller` with swarmml's own source.

Built the way `swarmml build` builds the predictor: from the local base (or
python:3.11-slim), with wheels downloaded on this machine (pip over HTTPS
fails inside containers here) and swarmml's installed source copied in, then
pushed to the cluster's registry.
"""
from __future__ import annotations

import hashlib
import os

from swarmml.build import predictor as build
from swarmml.build.context import cache_dir, pip_download, pip_reason, sync_tree, write_if_changed
from swarmml.cluster import images
from swarmml.console import note
from swarmml.engine import host_client
from swarmml.engine import images as engine_images
from swarmml.errors import SwarmmlError, UsageError

IMAGE_REPO = "swarmml/autoscaler"
# What the controller imports: the engine, the day-2 verbs and their console, and the reader of the
# replicas' /metrics (swarmml/metrics_formats.py).
REQUIREMENTS = ["docker>=7.0", "requests>=2.31", "pyyaml>=6.0", "rich>=13.0", "click>=8.1", "tenacity>=8.2",
                "prometheus-client>=0.20"]
# swarmml's own source, copied into the image: found from this file, not by importing the package (whose
# API would import almost everything, above this module).
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DOCKERFILE = """\
# The swarmml autoscaler: `python -m swarmml.autoscale.controller` on a swarm manager.
# Built by `swarmml autoscale install` from swarmml's installed source and wheels downloaded on the host.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
COPY requirements.txt /src/requirements.txt
COPY wheels/ /src/wheels/
RUN python3 -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /src/wheels -r /src/requirements.txt \\
 && rm -rf /src
COPY swarmml/ /app/swarmml/
RUN /opt/venv/bin/python -m compileall -q /app
ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/app PYTHONUNBUFFERED=1
# root: the docker socket of the node is root's (see the README for what that grants).
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "swarmml.autoscale.controller"]
"""



def prepare_context(cache: str) -> str:
    """The build context in swarmml's cache: Dockerfile, requirements, wheels (once) and swarmml's source."""
    ctx = os.path.join(cache, "autoscaler")
    os.makedirs(ctx, exist_ok=True)
    write_if_changed(os.path.join(ctx, "Dockerfile"), DOCKERFILE.encode())
    reqs = "\n".join(REQUIREMENTS) + "\n"
    wheels = os.path.join(ctx, "wheels")
    stamp = os.path.join(wheels, ".complete-" + hashlib.sha256(reqs.encode()).hexdigest()[:12])
    write_if_changed(os.path.join(ctx, "requirements.txt"), reqs.encode())
    if not os.path.exists(stamp):
        done = pip_download(list(REQUIREMENTS), wheels)
        if done.returncode != 0:
            raise SwarmmlError(f"downloading the autoscaler's wheels failed: {pip_reason(done)}")
        open(stamp, "w").close()
    # swarmml's .py files, not its image recipes (data/)
    sync_tree(PACKAGE_DIR, os.path.join(ctx, "swarmml"), skip_dirs=("data",), only=(".py",))
    return ctx


def build_and_push(tag: str = "latest", cluster: str | None = None, base_mode: str = "auto") -> str:
    """Build swarmml/autoscaler:TAG on this machine and push it to the cluster's registry; the ref nodes pull."""
    if not tag or any(c in tag for c in " /:@"):
        raise UsageError(f"--tag: expected a plain image tag like 1.2 or latest, got {tag!r}")
    client = host_client()
    base = images.base_image(base_mode, client)
    ctx = prepare_context(cache_dir())
    ref = f"{IMAGE_REPO}:{tag}"
    note(f"building {ref} (base {base}) ...")
    engine_images.build_image(client, ctx, ref, buildargs={"BASE_IMAGE": base},
                              labels={"io.swarmml.image": "autoscaler"})
    return build.push_to_cluster(client, {"autoscaler": ref}, cluster)["autoscaler"]
