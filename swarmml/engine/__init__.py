"""The engine package: the only code in swarmml that talks to a Docker engine.

Everything else works on plain data (dicts, lists, dataclasses); these modules
turn that into Docker Engine API calls through the Docker SDK and turn the
answers back into plain data: no SDK object leaves this package. Engine errors
keep their kind and status code (errors.py), and are retried there when that
can help.

- this file: choosing and connecting to an engine, where local clusters' sockets live;
- errors.py: the error kinds and the one retry policy;
- nodes.py: the containers, networks and volumes of a local cluster;
- swarm.py: services, tasks, nodes, networks, secrets, configs of a Swarm (stacks/ops).
"""
import os
from dataclasses import dataclass

import docker
import docker.errors
import requests

from swarmml.errors import EngineUnavailable, NotFound, SwarmmlError, UsageError

# Labels that mark everything a local swarmml cluster creates, so that
# `cluster down` removes exactly that and nothing else.
CLUSTER_LABEL = "io.swarmml.cluster"
ROLE_LABEL = "io.swarmml.role"
# The unix sockets of cluster managers live here, one root-only dir per cluster.
SOCKET_ROOT = os.environ.get("SWARMML_RUN_DIR", "/run/swarmml")


def cluster_socket(cluster):
    return os.path.join(SOCKET_ROOT, cluster, "docker.sock")


def node_socket(cluster, hostname):
    """Where the engine of a local cluster's node (hostname node<i>) listens, reached from this machine."""
    return os.path.join(SOCKET_ROOT, cluster, hostname, "docker.sock")


@dataclass
class Target:
    """Where swarmml sends its engine calls, and why it chose that place."""

    base_url: str
    reason: str
    cluster: str | None = None


def resolve_target(cluster=None):
    """Choose the engine: an explicit cluster, DOCKER_HOST, the one local cluster, or the default.

    Without DOCKER_HOST and with exactly one local swarmml cluster running,
    commands go to that cluster's manager, so `swarmml deploy` works right
    after `swarmml cluster up` with no `eval $(swarmml cluster env)`.
    """
    cluster = cluster or os.environ.get("SWARMML_CLUSTER")
    if cluster:
        sock = cluster_socket(cluster)
        if not os.path.exists(sock):
            raise NotFound(f"no running swarmml cluster named '{cluster}' (no socket at {sock}); start it with `swarmml cluster up --name {cluster}`")
        return Target(f"unix://{sock}", f"cluster '{cluster}'", cluster)
    if os.environ.get("DOCKER_HOST"):
        return Target(os.environ["DOCKER_HOST"], "DOCKER_HOST")
    try:
        names = sorted(n for n in os.listdir(SOCKET_ROOT) if os.path.exists(cluster_socket(n)))
    except OSError:
        names = []
    if len(names) == 1:
        return Target(f"unix://{cluster_socket(names[0])}", f"cluster '{names[0]}'", names[0])
    if len(names) > 1:
        raise UsageError(f"several swarmml clusters run ({', '.join(names)}); choose one with "
                         "`swarmml --cluster NAME ...` or SWARMML_CLUSTER")
    return Target("unix:///var/run/docker.sock", "default engine")


def connect(base_url=None, timeout=120):
    """A DockerClient for base_url (default: the host engine), or EngineUnavailable."""
    base_url = base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.DockerClient(base_url=base_url, version="auto", timeout=timeout)
        client.ping()
        return client
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise EngineUnavailable(
            f"no Docker engine answers at {base_url}; run `bash scripts/engine-up.sh` to start one ({_short(exc)})"
        ) from None


def host_client():
    """The engine on this machine (the one that runs cluster nodes)."""
    return connect(os.environ.get("SWARMML_HOST_ENGINE") or "unix:///var/run/docker.sock")


def target_client(cluster=None):
    """The engine that stack, scale and verify commands act on."""
    target = resolve_target(cluster)
    return connect(target.base_url)


def _short(exc):
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def explain(exc):
    """One line from a docker APIError, for SwarmmlError messages."""
    if isinstance(exc, docker.errors.APIError):
        return (exc.explanation or str(exc)).strip().splitlines()[0]
    return _short(exc)
