"""Where built images go, and the login a registry asks for.

Two kinds of target:
- a swarmml cluster's own registry (`build --push`). Plain, it is published
  on 127.0.0.1 and the nodes pull it as registry:5000. With `cluster up
  --registry-auth` it asks for a login (htpasswd) over TLS, and is addressed
  as <its bridge address>:5000 by this machine and by the nodes alike, so
  that one `docker login` covers the push and the pulls;
- any registry (`build --push REGISTRY[/PREFIX]`), with the login that
  `docker login` or a credential helper keeps in the docker config.

The cluster registry's material lives in its root-only directory
(/run/swarmml/<name>/registry/): the CA, the registry's certificate and key,
the htpasswd file and the generated password. Each engine that talks to it
trusts the CA through /etc/docker/certs.d/<address>/ca.crt, the docker way
for a registry with a private CA. Text building is pure; the functions that
write say so.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
from dataclasses import dataclass

import bcrypt

from swarmml.cluster import certs
from swarmml.errors import UsageError

PORT = 5000
USER = "swarmml"
CERTS_D = "/etc/docker/certs.d"  # where an engine looks for a registry's CA (docker's convention)
MATERIAL_DIR = "/auth"  # the registry container's view of its material

# The registry's entrypoint when it asks for a login: it waits for the material swarmml writes once the
# container's address is known (the certificate names it), then runs the image's own command ("$@").
WAIT_SCRIPT = f'while [ ! -e {MATERIAL_DIR}/ready ]; do sleep 0.2; done; exec "$@"'

# What distribution's registry reads instead of a config file of ours, so any registry image works.
AUTH_ENV = {
    "REGISTRY_AUTH": "htpasswd",
    "REGISTRY_AUTH_HTPASSWD_REALM": "swarmml",
    "REGISTRY_AUTH_HTPASSWD_PATH": f"{MATERIAL_DIR}/htpasswd",
    "REGISTRY_HTTP_TLS_CERTIFICATE": f"{MATERIAL_DIR}/cert.pem",
    "REGISTRY_HTTP_TLS_KEY": f"{MATERIAL_DIR}/key.pem",
}

# The first part of a reference names a registry when it has a dot or a port, or is localhost
# (docker's rule: anything else is a Docker Hub namespace).
_HOST_RE = re.compile(r"^(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)(?::\d{1,5})?$")
_PATH_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")


@dataclass(frozen=True)
class Target:
    push_prefix: str  # what this machine's engine pushes to
    pull_prefix: str  # what the nodes pull from
    registry: str  # the registry's host[:port], the key of its login in the docker config
    login: bool = False  # it asks for one


# --- targets (pure) --------------------------------------------------------------

def parse_target(value: str) -> Target:
    """'REGISTRY[/PREFIX]' from `build --push` -> the Target; one line naming the problem otherwise."""
    text = value.strip().rstrip("/")
    host, _, prefix = text.partition("/")
    if not _HOST_RE.match(host) or not ("." in host or ":" in host or host.startswith("localhost")):
        raise UsageError(f"--push: expected REGISTRY[/PREFIX] starting with a registry host (a name with a dot or "
                         f"a port, or localhost), got {value!r}")
    bad = [p for p in prefix.split("/") if prefix and not _PATH_RE.match(p)]
    if bad:
        raise UsageError(f"--push: {bad[0]!r} in {value!r} is not a valid repository path component "
                         "(lowercase letters, digits, and . _ - between them)")
    return Target(text, text, host)


def cluster_target(address: str, login: bool) -> Target:
    """A cluster registry: pushed at address; pulled at registry:5000 when plain, at the same address when not."""
    pull = address if login else f"registry:{PORT}"
    return Target(address, pull, address, login)


def refs(target: Target, ref: str) -> tuple[str, str]:
    """(the ref to push, the ref the nodes pull) for a local ref such as swarmml/predictor:latest."""
    return f"{target.push_prefix}/{ref}", f"{target.pull_prefix}/{ref}"


def container_options(login_dir: str | None) -> dict:
    """Pure: how the registry container runs (engine.containers.run_registry's keywords); login_dir: the material of
    a registry that asks for a login over TLS, None for a plain one. It waits for its certificate, which names
    the address the container gets."""
    if not login_dir:
        return {}
    return {"read_only": {login_dir: MATERIAL_DIR}, "wrapper": WAIT_SCRIPT, "environment": AUTH_ENV}


def explain_push(registry: str, message: str, user: str | None) -> str:
    """Pure: one line for a failed push, from the engine's error text."""
    low = message.lower()
    if "no basic auth credentials" in low or ("unauthorized" in low and not user):
        return (f"registry {registry} asks for a login and the docker config has none for it: "
                f"run `docker login {registry}`")
    if "unauthorized" in low or "authentication required" in low or "denied" in low:
        return (f"registry {registry} refused the login of {user!r} kept in the docker config: "
                f"run `docker login {registry}` again")
    if "x509" in low or "certificate" in low:
        return (f"the engine does not trust registry {registry}'s TLS certificate: put its CA in "
                f"{CERTS_D}/{registry}/ca.crt on the engine's machine ({message.strip()})")
    for sign in ("no such host", "connection refused", "i/o timeout", "no route to host", "server misbehaving",
                 "network is unreachable"):
        if sign in low:
            return f"registry {registry} can't be reached ({sign}): check its name and port"
    return f"pushing to {registry} failed: {message.strip()}"


def htpasswd_line(user: str, password: str) -> bytes:
    """One htpasswd entry; bcrypt is the only hash distribution's registry accepts."""
    return user.encode() + b":" + bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)) + b"\n"


# --- material (writes files) -----------------------------------------------------

def material_dir(run_dir: str) -> str:
    return os.path.join(run_dir, "registry")


def prepare(directory: str) -> None:
    """Writes: the registry's directory, before the container that mounts it starts."""
    os.makedirs(directory, mode=0o700, exist_ok=True)


def write_material(cluster: str, directory: str, address: str, names) -> str:
    """Writes: the CA, a certificate for address and names, the htpasswd file and its password; then `ready`.

    Returns the password. A second call for the same directory keeps the password (logins stay valid).
    """
    password = read_password(directory) or secrets.token_urlsafe(18)
    ca = certs.make_ca(f"swarmml {cluster} registry CA")
    server = certs.make_server(ca, "registry", [address.rsplit(":", 1)[0], *names])
    files = {"ca.pem": ca.cert, "cert.pem": server.cert, "key.pem": server.key,
             "htpasswd": htpasswd_line(USER, password), "password": password.encode() + b"\n",
             "address": address.encode() + b"\n"}
    for fname, data in files.items():
        fd = os.open(os.path.join(directory, fname), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    # The registry runs as whatever user its image chose: it must read its key and htpasswd.
    for fname in ("cert.pem", "key.pem", "htpasswd"):
        os.chmod(os.path.join(directory, fname), 0o644)
    os.chmod(directory, 0o755)
    open(os.path.join(directory, "ready"), "w").close()
    return password


def read_password(directory: str) -> str | None:
    return _read(directory, "password")


def read_address(directory: str) -> str | None:
    return _read(directory, "address")


def _read(directory: str, fname: str) -> str | None:
    """One line of the material, or None when it isn't there (a registry without a login)."""
    try:
        with open(os.path.join(directory, fname)) as f:
            return f.read().strip() or None
    except OSError:
        return None


def ca_pem(directory: str) -> bytes:
    with open(os.path.join(directory, "ca.pem"), "rb") as f:
        return f.read()


def trust_path(address: str, root: str = CERTS_D) -> str:
    return os.path.join(root, address, "ca.crt")


def trust_on_host(address: str, ca: bytes, root: str = CERTS_D) -> str:
    """Writes: this machine's engine trusts the registry's CA (it pushes there). Returns the file."""
    path = trust_path(address, root)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(ca)
    return path


def untrust_on_host(address: str, root: str = CERTS_D) -> None:
    """Writes: undo trust_on_host."""
    shutil.rmtree(os.path.dirname(trust_path(address, root)), ignore_errors=True)
