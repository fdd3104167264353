"""Engine I/O for images: exists, pull, build, import, tag and push, and what a registry holds.

Also the registry part of an image reference and the login the local docker
config holds for it (services.py sends it with a service, a push uses it).
"""
import subprocess

import docker
import docker.auth
import docker.errors
import requests

from swarmml.engine import errors, explain
from swarmml.errors import SwarmmlError


def image_exists(client, ref):
    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def try_pull(client, ref):
    """Pull ref; False (quickly) when no registry can be reached."""
    try:
        client.images.pull(ref)
        return True
    except (docker.errors.APIError, docker.errors.DockerException):
        return False


def build_image(client, context, ref, buildargs=None, labels=None, on_line=None):
    """Build a Dockerfile context; calls on_line(str) for each line of build output."""
    try:
        for chunk in client.api.build(path=context, tag=ref, buildargs=buildargs or {}, labels=labels or {},
                                      rm=True, forcerm=True, decode=True):
            if "error" in chunk:
                raise SwarmmlError(f"building {ref} failed: {chunk['error'].strip()}")
            if on_line and chunk.get("stream", "").strip():
                on_line(chunk["stream"].rstrip())
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"building {ref} failed: {explain(exc)}") from None


def import_rootfs(client, rootfs_dir, ref, changes):
    """docker import of a directory tree (a debootstrap root) as image ref."""
    tar = subprocess.Popen(["tar", "-C", rootfs_dir, "-c", "."], stdout=subprocess.PIPE)
    try:
        client.api.import_image(src=iter(lambda: tar.stdout.read(1 << 20), b""), repository=ref,
                                changes=changes, stream_src=True)
    finally:
        tar.stdout.close()
        tar.wait()


def tag_image(client, ref, new_ref):
    repo, tag = new_ref.rsplit(":", 1)
    client.images.get(ref).tag(repo, tag)


def push_image(client, ref, login=None):
    """Push ref with login (a docker config entry, or None); errors.PushFailed carries the engine's text."""
    try:
        for chunk in client.api.push(ref, stream=True, decode=True, auth_config=login or {}):
            if "error" in chunk:
                raise errors.PushFailed(chunk["error"])
    except docker.errors.APIError as exc:
        raise errors.PushFailed(explain(exc), exc.status_code) from None


# --- registries ---------------------------------------------------------------------

class RegistryLookupFailed(SwarmmlError):
    def __init__(self, image, reason):
        super().__init__(f"image {image} can't be resolved in its registry: {reason}")
        self.image, self.reason = image, reason


def distribution(client, image):
    """(digest, platforms) of image:tag in its registry; platforms as Placement.Platforms entries."""
    try:
        found = client.api.inspect_distribution(image)
    except docker.errors.APIError as exc:
        raise RegistryLookupFailed(image, explain(exc)) from None
    except requests.exceptions.RequestException as exc:
        raise RegistryLookupFailed(image, str(exc).splitlines()[0]) from None
    # As the docker client does: "arm" manifests would never match nodes that report "armv7l",
    # so their architecture is left out of the placement (docker/swarmkit#2294).
    platforms = [{"Architecture": "" if p.get("architecture", "").lower() == "arm" else p.get("architecture", ""),
                  "OS": p.get("os", "")}
                 for p in found.get("Platforms") or []]
    return found["Descriptor"]["digest"], platforms


def registry_of(image):
    """The registry part of an image reference, as the docker config keys its logins (docker.io for Hub)."""
    registry, _ = docker.auth.resolve_repository_name(image.split("@", 1)[0])
    return registry


def registry_login(registry):
    """The login the docker config holds for registry (auths, credsStore or credHelpers), or None.

    Read afresh each time, not from the client's copy: a `docker login` made since it was created counts.
    """
    found = docker.auth.resolve_authconfig(docker.auth.load_config(), registry)
    return dict(found) if found else None
