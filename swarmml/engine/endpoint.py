"""Which engine to talk to, decided the way the docker CLI decides it.

The docker CLI (cli/command/cli.go, resolveContextName) picks a context name:

1. --context, if given (with --host as well it is an error);
2. "default" if --host/-H is given;
3. "default" if DOCKER_HOST is set;
4. DOCKER_CONTEXT, if set;
5. "currentContext" in the docker config file (`docker context use`);
6. "default".

The default context's endpoint is --host, else DOCKER_HOST, else the local
socket, with TLS from DOCKER_TLS_VERIFY / DOCKER_TLS / DOCKER_CERT_PATH. A
named context lives in the context store under the docker config dir
(DOCKER_CONFIG, else ~/.docker):

    contexts/meta/<sha256 of the name>/meta.json   {"Name", "Endpoints": {"docker": {"Host", "SkipTLSVerify"}}}
    contexts/tls/<sha256 of the name>/docker/{ca,cert,key}.pem

Everything here is a pure function of an environment mapping and the files
it reads; nothing talks to an engine. Errors are one line for people.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from swarmml.errors import NotFound, UsageError

DEFAULT_CONTEXT = "default"
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
SCHEMES = ("unix", "tcp", "ssh", "npipe")
HTTP_PORT, TLS_PORT = 2375, 2376


@dataclass(frozen=True)
class TlsFiles:
    """The client side of TLS: which CA to trust and which certificate to show."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    verify: bool = True  # False: encrypt, but do not check the engine's certificate


@dataclass(frozen=True)
class Endpoint:
    """Where the engine is, how to reach it, and why this one was chosen."""

    host: str  # unix:///..., tcp://host:port, ssh://[user@]host[:port]
    reason: str  # for people: "DOCKER_HOST", "context 'prod' (DOCKER_CONTEXT)", ...
    context: str = DEFAULT_CONTEXT
    tls: TlsFiles | None = None
    explicit: bool = True  # False only when nothing at all was configured (the local socket by default)

    @property
    def scheme(self) -> str:
        return self.host.split("://", 1)[0]

    def describe(self) -> str:
        """One line: the engine's address, how it is secured, and why it was chosen."""
        how = ""
        if self.tls is not None:
            how = ", mutual TLS" if self.tls.cert else ", TLS"
            how += "" if self.tls.verify else " (the engine's certificate is not checked)"
            where = self.tls.ca or self.tls.cert
            if where and f"{os.sep}contexts{os.sep}tls{os.sep}" in where:
                how += ", the context's certificates"
            elif where:
                how += f", certificates in {os.path.dirname(where)}"
        elif self.scheme == "ssh":
            how = ", over SSH"
        return f"{self.host}{how}; chosen by {self.reason}"


@dataclass(frozen=True)
class ContextMeta:
    name: str
    host: str
    skip_tls_verify: bool = False
    tls: dict = field(default_factory=dict)  # ca/cert/key -> path, the files that exist


# --- where the files are ----------------------------------------------------------

def config_dir(env) -> str:
    """DOCKER_CONFIG, else ~/.docker (HOME from env, as the CLI does)."""
    if env.get("DOCKER_CONFIG"):
        return env["DOCKER_CONFIG"]
    return os.path.join(env.get("HOME") or os.path.expanduser("~"), ".docker")


def context_id(name: str) -> str:
    """The directory name the context store keeps a context under: sha256 of its name, hex."""
    return hashlib.sha256(name.encode()).hexdigest()


def meta_path(cfg_dir: str, name: str) -> str:
    return os.path.join(cfg_dir, "contexts", "meta", context_id(name), "meta.json")


def tls_dir(cfg_dir: str, name: str) -> str:
    return os.path.join(cfg_dir, "contexts", "tls", context_id(name), "docker")


# --- reading them -----------------------------------------------------------------

def current_context(cfg_dir: str) -> str | None:
    """currentContext from config.json (what `docker context use` writes), or None."""
    path = os.path.join(cfg_dir, "config.json")
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageError(f"can't read the docker config {path}: {exc}") from None
    name = data.get("currentContext") if isinstance(data, dict) else None
    return name or None


def read_context(cfg_dir: str, name: str) -> ContextMeta:
    """A named context from the store: its docker endpoint and the TLS files it holds."""
    path = meta_path(cfg_dir, name)
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        known = list_contexts(cfg_dir)
        hint = f"; known contexts: {', '.join(known)}" if known else "; `docker context ls` lists them"
        raise NotFound(f"context {name!r} does not exist (no {path}){hint}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"context {name!r}: can't read {path}: {exc}") from None
    docker_ep = ((data.get("Endpoints") or {}).get("docker") or {}) if isinstance(data, dict) else {}
    host = docker_ep.get("Host")
    if not host:
        raise UsageError(f"context {name!r} has no docker endpoint (no Endpoints.docker.Host in {path})")
    tdir = tls_dir(cfg_dir, name)
    tls = {k: os.path.join(tdir, f"{k}.pem") for k in ("ca", "cert", "key")
           if os.path.isfile(os.path.join(tdir, f"{k}.pem"))}
    return ContextMeta(name, host, bool(docker_ep.get("SkipTLSVerify")), tls)


def context_metadata(cfg_dir: str, name: str) -> dict | None:
    """A context's Metadata (Description and whatever else its writer kept there), or None when there is none."""
    try:
        with open(meta_path(cfg_dir, name)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    found = data.get("Metadata") if isinstance(data, dict) else None
    return found if isinstance(found, dict) else None


def list_contexts(cfg_dir: str) -> list[str]:
    root = os.path.join(cfg_dir, "contexts", "meta")
    names = []
    try:
        entries = os.listdir(root)
    except OSError:
        return []
    for entry in entries:
        try:
            with open(os.path.join(root, entry, "meta.json")) as f:
                names.append(json.load(f)["Name"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(names)


# --- deciding (pure) ----------------------------------------------------------------

def context_name(host: str | None, context: str | None, env, current: str | None) -> tuple[str, str]:
    """The context to use and why, in the docker CLI's order (see the module docstring)."""
    if context and host:
        raise UsageError("conflicting options: give either --host or --context, not both")
    if context:
        return context, "--context"
    if host:
        return DEFAULT_CONTEXT, "--host"
    if env.get("DOCKER_HOST"):
        return DEFAULT_CONTEXT, "DOCKER_HOST"
    if env.get("DOCKER_CONTEXT"):
        return env["DOCKER_CONTEXT"], "DOCKER_CONTEXT"
    if current:
        return current, "`docker context use` (currentContext in config.json)"
    return DEFAULT_CONTEXT, "default"


def normalize_host(value: str, tls: bool = False) -> str:
    """A host as the CLI accepts it, in full: 'h:2376' -> tcp://h:2376, 'tcp://h' -> tcp://h:2375 (2376 with TLS)."""
    value = (value or "").strip()
    if not value:
        raise UsageError("empty engine address; expected unix:///path, tcp://host:port or ssh://user@host")
    if "://" not in value:
        value = "tcp://" + value
    scheme, rest = value.split("://", 1)
    if scheme not in SCHEMES:
        raise UsageError(f"engine address {value!r}: unknown scheme {scheme!r}; expected one of "
                         f"{', '.join(s + '://' for s in SCHEMES)}")
    if scheme in ("unix", "npipe"):
        if not rest:
            raise UsageError(f"engine address {value!r}: no socket path")
        return value
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"engine address {value!r}: {exc}") from None
    if not parts.hostname:
        raise UsageError(f"engine address {value!r}: no host name")
    if parts.path not in ("", "/"):
        raise UsageError(f"engine address {value!r}: a path is not supported here")
    if scheme == "tcp" and port is None:
        return f"tcp://{parts.netloc}:{TLS_PORT if tls else HTTP_PORT}"
    return f"{scheme}://{parts.netloc}"


def env_tls(env, cfg_dir: str, exists=os.path.isfile) -> TlsFiles | None:
    """TLS for the default context, from DOCKER_TLS_VERIFY, DOCKER_TLS and DOCKER_CERT_PATH (the CLI's rules).

    DOCKER_TLS_VERIFY (any non-empty value) turns on TLS and verification;
    DOCKER_TLS alone turns on TLS without verifying the engine. The files are
    ca.pem, cert.pem and key.pem in DOCKER_CERT_PATH, else in the config dir;
    a missing cert.pem or key.pem means no client certificate.
    """
    verify = bool(env.get("DOCKER_TLS_VERIFY"))
    if not verify and not env.get("DOCKER_TLS"):
        return None
    base = env.get("DOCKER_CERT_PATH") or cfg_dir
    ca, cert, key = (os.path.join(base, f) for f in ("ca.pem", "cert.pem", "key.pem"))
    if verify and not exists(ca):
        raise UsageError(f"DOCKER_TLS_VERIFY is set but there is no CA certificate at {ca}; set DOCKER_CERT_PATH "
                         "to the directory with ca.pem, cert.pem and key.pem")
    ca_file = ca if exists(ca) else None
    if not (exists(cert) and exists(key)):
        return TlsFiles(ca_file, None, None, verify)  # no client certificate
    return TlsFiles(ca_file, cert, key, verify)


def context_tls(meta: ContextMeta) -> TlsFiles | None:
    """TLS for a named context: its stored files, and SkipTLSVerify."""
    if not meta.host.startswith("tcp://") or not (meta.tls or meta.skip_tls_verify):
        return None
    cert, key = meta.tls.get("cert"), meta.tls.get("key")
    if bool(cert) != bool(key):
        raise UsageError(f"context {meta.name!r} has a TLS {'cert' if cert else 'key'}.pem without its "
                         f"{'key' if cert else 'cert'}.pem")
    return TlsFiles(meta.tls.get("ca"), cert, key, not meta.skip_tls_verify)


def resolve(env, host: str | None = None, context: str | None = None) -> Endpoint:
    """The endpoint the docker CLI would use with these flags and this environment (reads the config files)."""
    cfg = config_dir(env)
    current = None if (context or host or env.get("DOCKER_HOST") or env.get("DOCKER_CONTEXT")) \
        else current_context(cfg)
    name, why = context_name(host, context, env, current)
    if name != DEFAULT_CONTEXT:
        meta = read_context(cfg, name)
        tls = context_tls(meta)
        return Endpoint(normalize_host(meta.host, tls is not None), f"context {name!r} ({why})", name, tls)
    tls = env_tls(env, cfg)
    raw = host or env.get("DOCKER_HOST")
    if raw:
        return Endpoint(normalize_host(raw, tls is not None), why, tls=tls)
    if tls is not None:
        return Endpoint(f"tcp://localhost:{TLS_PORT}", "DOCKER_TLS_VERIFY with no host", tls=tls)
    return Endpoint(DEFAULT_SOCKET, "default", explicit=False)


# --- the other direction: writing a context (what `docker context create` writes) ----

def context_files(name: str, host: str, description: str = "", tls: dict | None = None,
                  skip_tls_verify: bool = False, metadata: dict | None = None) -> dict[str, bytes]:
    """Pure: relative path -> content of the files that make context `name` in a config dir.

    metadata: more fields of the context's Metadata (the docker CLI keeps fields it does not know)."""
    meta = {"Name": name, "Metadata": {**(metadata or {}), "Description": description},
            "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": skip_tls_verify}}}
    files = {os.path.join("contexts", "meta", context_id(name), "meta.json"): json.dumps(meta).encode()}
    for kind, data in (tls or {}).items():
        files[os.path.join("contexts", "tls", context_id(name), "docker", f"{kind}.pem")] = data
    return files


# --- what an error while connecting means (pure, for one line) ------------------------

def explain_failure(exc: BaseException, endpoint_host: str) -> str:
    """One line for a person from an exception raised while connecting to endpoint_host.

    Matched by exception class name and text so that this module needs
    neither paramiko nor requests.
    """
    kinds = {c.__name__ for c in type(exc).__mro__}
    text = " ".join(str(exc).split()) or type(exc).__name__
    low = text.lower()
    where = endpoint_host
    if "BadHostKeyException" in kinds:
        # paramiko names the host after ~/.ssh/config's HostName; known_hosts adds the port off 22
        named = re.search(r"server '([^']+)'", text)
        target = hostkey_name(endpoint_host, named.group(1) if named else None)
        return (f"the SSH host key of {where} does not match the one in ~/.ssh/known_hosts; if the host was "
                f"rebuilt, remove the old key with `ssh-keygen -R '{target}'` and check the new one")
    if "not found in known_hosts" in low:
        return (f"the SSH host key of {where} is not in ~/.ssh/known_hosts; connect once with "
                "`ssh` to check and accept it (swarmml never accepts unknown host keys)")
    if "AuthenticationException" in kinds:
        return f"SSH login to {where} was refused ({text}); check the user, the key (ssh-agent or IdentityFile)"
    if "SSLError" in kinds or "SSLCertVerificationError" in kinds or "ssl" in low and "certificate" in low:
        if "certificate verify failed" in low or "hostname mismatch" in low or "ip address mismatch" in low:
            return (f"the engine at {where} showed a TLS certificate this CA does not vouch for ({_tail(text)}); "
                    "check DOCKER_CERT_PATH or the context's ca.pem")
        if any(s in low for s in ("unknown ca", "bad certificate", "certificate required", "handshake failure",
                                  "certificate unknown", "tlsv13 alert")):
            return (f"the engine at {where} refused our TLS client certificate ({_tail(text)}); use a cert.pem "
                    "signed by the engine's CA")
        return f"TLS with the engine at {where} failed ({_tail(text)})"
    if "wrong version number" in low or "record layer failure" in low:
        return f"the engine at {where} does not speak TLS there; use tcp:// without DOCKER_TLS_VERIFY, or the TLS port"
    if "NoValidConnectionsError" in kinds or "connection refused" in low:
        return f"nothing accepts connections at {where} (connection refused); is the engine or sshd running there?"
    if any(s in low for s in ("no route to host", "network is unreachable", "name or service not known",
                              "temporary failure in name resolution", "timed out", "nodename nor servname")):
        return f"no route to {where} ({_tail(text)}); check the address and the network"
    if "SSHException" in kinds:
        return f"SSH to {where} failed ({_tail(text)})"
    return f"no Docker engine answers at {where} ({_tail(text)})"


def hostkey_name(endpoint_host: str, real_host: str | None = None) -> str:
    """How known_hosts names an SSH endpoint: host, or [host]:port off port 22 (real_host: after HostName)."""
    if real_host and real_host.startswith("["):
        return real_host
    try:
        parts = urlsplit(endpoint_host)
        host, port = real_host or parts.hostname or endpoint_host, parts.port
    except ValueError:
        return endpoint_host
    return host if port in (None, 22) else f"[{host}]:{port}"


def _tail(text: str, limit: int = 160) -> str:
    # SDK and urllib3 messages nest the real reason last, after long wrappers.
    for marker in ("SSLError(", "] "):
        if marker in text:
            text = text.rsplit(marker, 1)[-1]
    text = re.sub(r"\s*\(_ssl\.c:\d+\)", "", text).strip(" ()'\"")
    return text[:limit]
