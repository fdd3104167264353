"""What the autoscaler reads and writes besides services: its lease (a Swarm config) and the replicas' metrics.

Plain data in and out: the lease as (ID, version, labels), a scrape as text
or an error line. The decisions are in swarmml.autoscale (pure).
"""
from __future__ import annotations

import base64
import urllib.error
import urllib.parse
import urllib.request

import docker.errors

from swarmml.engine import explain
from swarmml.errors import SwarmmlError

LEASE_DATA = b"swarmml autoscaler lease: see the labels\n"


class LeaseLost(SwarmmlError):
    """Another controller wrote the lease between our read and our write."""


def lease(client, name: str) -> tuple[str, int, dict] | None:
    """(ID, version, labels) of the lease config, or None when there is none."""
    try:
        found = [c for c in client.api.configs(filters={"name": name}) if c["Spec"]["Name"] == name]
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"reading the autoscaler lease: {explain(exc)}") from None
    if not found:
        return None
    c = found[0]
    return c["ID"], c["Version"]["Index"], c["Spec"].get("Labels") or {}


def create_lease(client, name: str, labels: dict) -> str:
    """Create the lease config; LeaseLost when another controller created it first."""
    try:
        return client.api.create_config(name, LEASE_DATA, labels=labels)["ID"]
    except docker.errors.APIError as exc:
        if exc.status_code == 409:
            raise LeaseLost(f"config {name} was created by another controller") from None
        raise SwarmmlError(f"creating the autoscaler lease: {explain(exc)}") from None


def write_lease(client, config_id: str, version: int, name: str, labels: dict) -> None:
    """Replace the lease's labels if it is still at `version` (the only config field Swarm lets change)."""
    api = client.api
    spec = {"Name": name, "Labels": labels, "Data": base64.b64encode(LEASE_DATA).decode()}
    try:
        resp = api._post_json(api._url("/configs/{0}/update", config_id), data=spec, params={"version": version})
        api._raise_for_status(resp)
    except docker.errors.APIError as exc:
        text = explain(exc)
        if "out of sequence" in text or exc.status_code in (404, 409):
            raise LeaseLost(f"the autoscaler lease changed under us: {text}") from None
        raise SwarmmlError(f"renewing the autoscaler lease: {text}") from None


def remove_lease(client, config_id: str) -> None:
    try:
        client.api.remove_config(config_id)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"removing the autoscaler lease: {explain(exc)}") from None


def http_get(url: str, timeout: float = 1.0, limit: int = 1 << 20) -> tuple[str | None, str | None]:
    """(body, None) or (None, one-line error) for a GET: a replica's /metrics or a Prometheus query."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read(limit).decode("utf-8", errors="replace"), None
    except urllib.error.HTTPError as exc:
        return None, f"HTTP {exc.code} from {url}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return None, f"{url}: {str(reason).strip() or type(exc).__name__}"


def query_url(base: str, query: str) -> str:
    return base.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": query})
