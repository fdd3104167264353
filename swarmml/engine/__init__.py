"""The engine package: the only code in swarmml that talks to a Docker engine.

Everything else works on plain data (dicts, lists, dataclasses); these modules
turn that into Docker Engine API calls through the Docker SDK and turn the
answers back into plain data: no SDK object leaves this package. Engine errors
keep their kind and status code (errors.py), and are retried there when that
can help.

One module per engine resource; none is named after its caller:

- this file: choosing and connecting to an engine, where local clusters' sockets live;
- endpoint.py: which engine the docker CLI would use (-H, DOCKER_HOST, contexts), and its TLS material;
- failover.py: moving a client's calls to another manager when the one it talks to is lost;
- peers.py: a remote swarm's other managers as URLs, remembered between runs;
- errors.py: the error kinds and the one retry policy;
- swarm.py: the swarm itself: manager check, info, settings, clock, init/join/leave, stacks;
- nodes.py: Swarm nodes: list, our own node, update, remove, each node's own engine;
- services.py: Swarm services: list, inspect, create, update, remove (with their registry login);
- tasks.py: Swarm tasks: list, log tails, running and unfinished ones, their containers' facts;
- networks.py: a swarm's networks, and a local cluster's bridge;
- configs.py: Swarm configs and secrets, and the autoscaler's lease (a config);
- images.py: exists, pull, build, import, tag, push; registry lookups and logins;
- containers.py: a local cluster's node and registry containers and volumes, stats, top's probe;
- logs.py: a task's log stream;
- files.py: the files of a directory in a task's container;
- http.py: plain GETs to services the swarm runs (Prometheus, replicas' /metrics), not the engine.
"""
import json
import os
from dataclasses import dataclass

import docker
import docker.errors
import requests

from swarmml import labels
from swarmml.engine import endpoint, failover, peers
from swarmml.errors import EngineUnavailable, NotFound, UsageError

# Labels that mark everything a local swarmml cluster creates, so that
# `cluster down` removes exactly that and nothing else.
CLUSTER_LABEL, ROLE_LABEL = labels.CLUSTER, labels.ROLE
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
    tls: endpoint.TlsFiles | None = None  # client TLS material for tcp:// (DOCKER_TLS_VERIFY or a context)

    def describe(self):
        return endpoint.Endpoint(self.base_url, self.reason, tls=self.tls).describe() + (
            f"; swarmml cluster '{self.cluster}'" if self.cluster else "")


def resolve_target(cluster=None, host=None, context=None):
    """Choose the engine: an explicit cluster, what the docker CLI would use, the one local cluster, or the default.

    "What the docker CLI would use" is -H/--host, --context, DOCKER_HOST,
    DOCKER_CONTEXT or `docker context use`, in that CLI's order (endpoint.py);
    when it reaches a local cluster's manager, the Target names that cluster.
    With none of them set and exactly one local swarmml cluster running,
    commands go to that cluster's manager, so `swarmml deploy` works right
    after `swarmml cluster up` with no `eval $(swarmml cluster env)`.
    """
    cluster = cluster or os.environ.get("SWARMML_CLUSTER")
    if cluster:
        sock = cluster_socket(cluster)
        if not os.path.lexists(sock):
            raise NotFound(f"no running swarmml cluster named '{cluster}' (no socket at {sock}); "
                           f"start it with `swarmml cluster up --name {cluster}`")
        return Target(f"unix://{sock}", f"cluster '{cluster}'", cluster)
    # -H/--host, --context, DOCKER_HOST, DOCKER_CONTEXT, `docker context use`: the docker CLI's order.
    ep = endpoint.resolve(os.environ, host=host or os.environ.get("SWARMML_HOST") or None,
                          context=context or os.environ.get("SWARMML_CONTEXT") or None)
    if ep.explicit:
        return Target(ep.host, ep.reason, cluster_at(ep.host), ep.tls)
    try:
        names = sorted(n for n in os.listdir(SOCKET_ROOT) if os.path.lexists(cluster_socket(n)))
    except OSError:
        names = []
    if len(names) == 1:
        return Target(f"unix://{cluster_socket(names[0])}", f"cluster '{names[0]}'", names[0])
    if len(names) > 1:
        raise UsageError(f"several swarmml clusters run ({', '.join(names)}); choose one with "
                         "`swarmml --cluster NAME ...` or SWARMML_CLUSTER")
    return Target("unix:///var/run/docker.sock", "default engine")


def connect(base_url=None, timeout=120, tls=None):
    """A DockerClient for base_url (default: the host engine), or EngineUnavailable.

    ssh:// goes through paramiko (the SDK's default): one SSH transport per
    client, its failures typed, host keys checked against ~/.ssh/known_hosts.
    """
    base_url = base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        tls_config = docker.tls.TLSConfig(client_cert=(tls.cert, tls.key) if tls.cert else None, ca_cert=tls.ca,
                                          verify=tls.ca if tls.verify and tls.ca else tls.verify) if tls else False
        if tls or base_url.startswith(REMOTE_SCHEMES):
            client = _remote_client(base_url, timeout, tls_config)
        elif len(sockets := cluster_sockets(base_url)) > 1:
            client = _failover_client(base_url, failover.unix_ways(sockets, timeout), timeout)
        else:
            client = docker.DockerClient(base_url=base_url, version="auto", timeout=timeout, tls=tls_config)
        client.ping()
        # Which local cluster this is, for what only a local cluster knows (its network, its nodes' engines).
        client.swarmml_cluster = cluster_at(base_url) if base_url.startswith("unix://") else None
        return client
    except docker.errors.TLSParameterError as exc:
        raise UsageError(f"TLS for {base_url}: {exc}") from None
    except _CONNECT_ERRORS as exc:
        if not base_url.startswith("unix://"):
            raise EngineUnavailable(endpoint.explain_failure(exc, base_url)) from None
        raise EngineUnavailable(
            f"no Docker engine answers at {base_url}; run `bash scripts/engine-up.sh` to start one ({_short(exc)})"
        ) from None


REMOTE_SCHEMES = ("tcp://", "http://", "https://", "ssh://")


def _remote_client(base_url, timeout, tls_config):
    """A client of a remote engine that fails over to the swarm's other managers (engine/peers.py).

    With TLS it trusts only tls_config's CA, as the docker CLI does: requests lets
    REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's CA, so the session must
    not read its environment. The API version is negotiated once the failover is in
    place (the SDK's "auto" would ask the given manager alone, while it may be lost).
    """
    tls_on = bool(tls_config)
    known = peers.load(base_url)
    client, used = _first_that_connects([base_url] + known, timeout, tls_config)
    # the transport the client was made with, first
    own = failover.Way(used, requests.adapters.HTTPAdapter, client.api.base_url,
                       adapter=client.api.get_adapter(client.api.base_url))

    def ways(others):
        return [own] + [_remote_way(u, timeout, tls_on) for u in dict.fromkeys([base_url] + others) if u != used]

    if known:
        failover.install(client, ways(known))
    _negotiate(client)
    try:
        learned = peers.peer_urls(base_url, peers.manager_hosts(client.api.nodes()), tls_on)
    except (docker.errors.APIError, requests.exceptions.RequestException):
        return client  # not a swarm manager now, or no leader: what was known stays known
    if learned != known:
        peers.save(base_url, learned)
        failover.install(client, ways(learned))
    return client


def _one_ssh_pool(adapter):
    """One connection pool for all of an ssh:// adapter's requests, not one per URL; returns the adapter.

    The SDK's SSH adapter keys its pools by each request's whole URL (path and query), keeps 9 of
    them, and each holds an SSH channel running `docker system dial-stdio` on the host. A deploy
    polling tasks and services by ID cycles through more URLs than that, so channels pile up to
    sshd's MaxSessions (10 by default) and the next request fails ("ChannelException: Connect
    failed"). The pool does not depend on the URL: one is enough, and its idle connections are reused.
    """
    by_url = adapter.get_connection
    adapter.get_connection = lambda url, proxies=None: by_url("http+docker://ssh", proxies)
    adapter.pools.clear()
    return adapter


def _first_that_connects(urls, timeout, tls_config):
    """The client of the first URL whose transport can be set up: an ssh:// one connects at once."""
    first_error = None
    for url in urls:
        try:
            client = docker.DockerClient(base_url=url, version=docker.constants.MINIMUM_DOCKER_API_VERSION,
                                         timeout=timeout, tls=tls_config)
            client.api.trust_env = False
            if url.startswith("ssh://"):
                _one_ssh_pool(client.api._custom_adapter)
            return client, url
        except _CONNECT_ERRORS as exc:
            first_error = first_error or exc
    raise first_error


def _remote_way(url, timeout, tls_on):
    """failover.Way to another manager's engine at url (its adapter is made when first needed)."""
    if url.startswith("ssh://"):
        from docker.transport import SSHHTTPAdapter
        return failover.Way(url, lambda: _one_ssh_pool(SSHHTTPAdapter(url, timeout, max_pool_size=10)), None)
    return failover.Way(url, requests.adapters.HTTPAdapter, docker.utils.parse_host(url, False, tls=tls_on))


def _failover_client(base_url, ways, timeout):
    """A client of a local cluster that reaches its swarm through any manager (engine/failover.py).

    The API version is asked for only once the failover is in place: the SDK's "auto" would ask
    the first manager alone, while it may be the one that was lost.
    """
    client = docker.DockerClient(base_url=base_url, version=docker.constants.MINIMUM_DOCKER_API_VERSION,
                                 timeout=timeout)
    failover.install(client, ways)
    _negotiate(client)
    return client


def _negotiate(client):
    """Use the highest API version both the SDK and the engine speak (what version="auto" does)."""
    server = client.api.version(api_version=False).get("ApiVersion") or docker.constants.DEFAULT_DOCKER_API_VERSION
    ours = docker.constants.DEFAULT_DOCKER_API_VERSION
    client.api._version = min(server, ours, key=lambda v: tuple(int(p) for p in v.split(".")))


def _connect_errors():
    errors = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)
    try:
        import paramiko
        return errors + (paramiko.SSHException,)
    except ImportError:
        return errors


_CONNECT_ERRORS = _connect_errors()


def cluster_sockets(base_url):
    """The sockets of every node of the local cluster whose manager base_url reaches, that one first.

    They are the ways to the swarm when that manager is lost (engine/failover.py). Workers come
    after managers in practice: they are tried only when no manager before them answered, and
    they refuse swarm calls, so a worker never takes a manager's place.
    """
    name = cluster_at(base_url) if base_url.startswith("unix://") else None
    if not name:
        return []
    primary = os.path.realpath(base_url[len("unix://"):])
    root = os.path.join(SOCKET_ROOT, name)
    others = sorted(os.path.join(root, d, "docker.sock") for d in os.listdir(root)
                    if os.path.exists(os.path.join(root, d, "docker.sock")))
    return [primary] + [s for s in others if os.path.realpath(s) != primary]


def cluster_at(base_url):
    """The local swarmml cluster whose manager base_url reaches (its socket, or its exposed ssh/tls), or None."""
    try:
        names = sorted(os.listdir(SOCKET_ROOT))
    except OSError:
        return None
    if base_url.startswith("unix://"):
        path = os.path.realpath(base_url[len("unix://"):])
        for name in names:
            if os.path.lexists(cluster_socket(name)) and os.path.realpath(cluster_socket(name)) == path:
                return name
        return None
    for name in names:
        try:
            with open(os.path.join(SOCKET_ROOT, name, "expose.json")) as f:
                exposed = json.load(f)
        except (OSError, ValueError):
            continue
        if base_url in exposed.get("urls", []):
            return name
    return None


def cluster_of(client):
    """The local swarmml cluster a client from connect() talks to, or None."""
    return getattr(client, "swarmml_cluster", None)


def host_client():
    """The engine on this machine (the one that runs cluster nodes)."""
    return connect(os.environ.get("SWARMML_HOST_ENGINE") or "unix:///var/run/docker.sock")


def target_client(cluster=None):
    """The engine that stack, scale and verify commands act on."""
    target = resolve_target(cluster)
    if os.environ.get("SWARMML_VERBOSE"):
        from swarmml.console import note  # rich's console, only when -v asks for this line
        note(f"engine: {target.describe()}")
    return connect(target.base_url, tls=target.tls)


def _short(exc):
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def explain(exc):
    """One line from a docker APIError, for SwarmmlError messages."""
    if isinstance(exc, docker.errors.APIError):
        return (exc.explanation or str(exc)).strip().splitlines()[0]
    return _short(exc)
