"""Bare "machines" for the SSH cluster tests: containers that run only sshd, on a bridge network of their own.

They start with no Docker engine, with the capabilities a local cluster's node has (swarmml.engine.containers'
run options), so that `cluster create` can install one into them and run a Swarm. Everything made here
is labelled as swarmml cluster PREFIX, so remove_all() takes exactly it away.
"""
import paths
import hashlib
import os

from swarmml.cluster import certs, images
from swarmml.engine import containers as engine_containers
from swarmml.engine import images as engine_images
from swarmml.engine import networks as engine_networks

PREFIX = "it-ssh"
HERE = os.path.join(paths.DATA, "ssh-host")


def image(client):
    """The host image, built once per Dockerfile version (its debs come with it: see the Dockerfile)."""
    with open(os.path.join(HERE, "Dockerfile"), "rb") as f:
        ref = f"swarmml-sshlab/host:{hashlib.sha256(f.read()).hexdigest()[:8]}"
    if not engine_images.image_exists(client, ref):
        engine_images.build_image(client, HERE, ref, buildargs={"BASE_IMAGE": images.ensure_local_base(client)})
    return ref


def network(client):
    name = f"{PREFIX}-net"
    engine_networks.ensure_network(client, name, PREFIX)
    return name


def start_host(client, ref, net, name, authorized: str, sshd=True, files=None):
    """A host container; returns (its address, its host key's public line). sshd=False: nothing listens on 22.
    files: path -> bytes written into it before it starts."""
    host_key = certs.make_ssh_key(name)
    volume = f"{PREFIX}-{name}"
    engine_containers.ensure_volume(client, volume, PREFIX, "host")
    api = client.api
    host_config = api.create_host_config(
        binds={volume: {"bind": "/var/lib/docker", "mode": "rw"},
               "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
        network_mode=net, restart_policy={"Name": "no"}, **engine_containers.NODE_RUN_OPTIONS)
    host_config["MaskedPaths"], host_config["ReadonlyPaths"] = [], []
    created = api.create_container(
        ref, None if sshd else ["sleep", "infinity"], name=f"{PREFIX}-{name}", hostname=name,
        labels=engine_containers.labels_for(PREFIX, "host"), host_config=host_config, detach=True,
        networking_config=api.create_networking_config({net: api.create_endpoint_config()}))
    engine_containers.put_file(client, created["Id"], "/etc/ssh/swarmml_host_key", host_key.private, mode=0o600)
    engine_containers.put_file(client, created["Id"], "/etc/ssh/authorized_keys", authorized.encode() + b"\n",
                               mode=0o600)
    for path, data in (files or {}).items():
        engine_containers.put_file(client, created["Id"], path, data)
    api.start(created["Id"])
    return engine_containers.container_ip(client, created["Id"], net), host_key.public


def known_hosts_line(addr, public):
    return f"{addr} {' '.join(public.split()[:2])}\n"


def remove_all(client):
    return engine_containers.remove_cluster_objects(client, PREFIX)
