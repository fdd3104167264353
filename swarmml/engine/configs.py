"""Engine I/O for Swarm configs and secrets, and the autoscaler's lease, which is a config.

Plain data in and out: names and IDs, a config's data as bytes, the lease as
(ID, version, labels). The autoscaler's decisions are in swarmml.autoscale (pure).
"""
from __future__ import annotations

import base64

import docker.errors

from swarmml.engine import errors, explain
from swarmml.errors import SwarmmlError


def secret_ids(client, names):
    return {s["Spec"]["Name"]: s["ID"] for s in errors.call("listing secrets", client.api.secrets)
            if s["Spec"]["Name"] in names}


def secret_names(client):
    return {s["Spec"]["Name"] for s in errors.call("listing secrets", client.api.secrets)}


def create_secret(client, spec):
    return errors.call(f"creating secret {spec['Name']}", client.api.create_secret, spec["Name"],
                       base64.b64decode(spec["Data"]), labels=spec.get("Labels"), retry=())["ID"]


def remove_secret(client, secret_id):
    errors.call(f"removing secret {secret_id}", client.api.remove_secret, secret_id)


def config_ids(client, names):
    return {c["Spec"]["Name"]: c["ID"] for c in errors.call("listing configs", client.api.configs)
            if c["Spec"]["Name"] in names}


def labelled_configs(client, label):
    """[(id, name, labels, created_at)] for configs carrying label (KEY or KEY=VALUE)."""
    return [(c["ID"], c["Spec"]["Name"], c["Spec"].get("Labels") or {}, c.get("CreatedAt", ""))
            for c in errors.call("listing configs", client.api.configs, filters={"label": label})]


def config_data(client, config_id):
    return base64.b64decode(errors.call(f"config {config_id}", client.api.inspect_config, config_id)["Spec"]["Data"])


def create_config(client, spec):
    kwargs = {}
    if spec.get("Templating"):
        kwargs["templating"] = spec["Templating"]
    return errors.call(f"creating config {spec['Name']}", client.api.create_config, spec["Name"],
                       base64.b64decode(spec["Data"]), labels=spec.get("Labels"), retry=(), **kwargs)["ID"]


def remove_config(client, config_id):
    errors.call(f"removing config {config_id}", client.api.remove_config, config_id)


# --- the autoscaler's lease: a config whose labels the controllers write --------

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
