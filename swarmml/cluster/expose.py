"""A local cluster's managers reached as remote engines are: sshd and the engine's TLS port (2376, mutual TLS).

`cluster up --expose ssh,tls` runs every manager node through NODE_SCRIPT: it
waits for the material swarmml writes once the node's bridge address is
known, then starts sshd and dockerd listening on that address only (and the
node's unix sockets); on a running cluster, its managers' containers are run
again that way, one at a time (swarmml/cluster/change.py). The host publishes
node1's two ports on 127.0.0.1 only;
the other managers answer on the cluster's bridge, where a client that lost
node1 finds them (engine/peers.py), as it would a remote swarm's managers.

Material, all in the cluster's root-only directory (/run/swarmml/<name>/):
- nodeN/expose/, for every manager: the CA, the engine's certificate (SANs: its
  bridge address, 127.0.0.1, localhost, its names), the SSH host key, authorized_keys;
- client/: ca.pem, cert.pem, key.pem (a DOCKER_CERT_PATH) and id_ed25519.

For `ssh://` the docker CLI and the SDK both read ~/.ssh/config and
~/.ssh/known_hosts: swarmml adds a `Host swarmml-<name>` block and the host
key between markers, and `cluster down` takes them out again.
Text building is pure; the functions that write say so.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass

from swarmml.cluster import certs
from swarmml.engine import endpoint
from swarmml.errors import UsageError

KINDS = ("ssh", "tls")
TLS_PORT, SSH_PORT = 2376, 22
NODE_DIR = "/swarmml-run/expose"  # the node's view of its expose dir (its socket dir is mounted at /swarmml-run)

# The manager node's entrypoint when exposed: "$@" are dockerd's usual arguments.
NODE_SCRIPT = r"""set -e
X={dir}
while [ ! -e $X/ready ]; do sleep 0.2; done
IP=$(ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
if [ -e $X/ssh_host_ed25519_key ]; then
  mkdir -p /run/sshd
  /usr/sbin/sshd -f /dev/null -o ListenAddress=$IP -o HostKey=$X/ssh_host_ed25519_key \
    -o AuthorizedKeysFile=$X/authorized_keys -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no \
    -o PermitRootLogin=prohibit-password -o PidFile=/run/sshd.pid
fi
if [ -e $X/server-cert.pem ]; then
  set -- "$@" -H tcp://$IP:{port} --tlsverify --tlscacert $X/ca.pem --tlscert $X/server-cert.pem \
    --tlskey $X/server-key.pem
fi
exec dockerd "$@"
""".replace("{dir}", NODE_DIR).replace("{port}", str(TLS_PORT))


def parse_kinds(value) -> tuple[str, ...]:
    """'ssh,tls' -> ('ssh', 'tls'); '' -> ()."""
    if not value:
        return ()
    kinds = [k.strip() for k in (value.split(",") if isinstance(value, str) else value) if k.strip()]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise UsageError(f"--expose: expected ssh, tls or ssh,tls, got {', '.join(map(repr, bad))}")
    return tuple(k for k in KINDS if k in kinds)


def alias(cluster: str) -> str:
    """The ssh Host alias and the docker context name of a cluster."""
    return f"swarmml-{cluster}"


# --- material (writes files) -----------------------------------------------------

@dataclass
class Authority:
    """What every exposed manager of a cluster shares: one CA, one SSH host key, one client identity.

    Kept in memory while `cluster up` starts the managers: each gets its own engine
    certificate (its address differs) from the same CA, so a client trusts them all.
    """
    kinds: tuple
    ca: object = None
    client: object = None
    host_key: object = None
    user_key: object = None


def authority(cluster: str, kinds) -> Authority:
    """A cluster's CA, client certificate and SSH keys, made once (not written)."""
    a = Authority(tuple(kinds))
    if "tls" in kinds:
        a.ca = certs.make_ca(f"swarmml {cluster} CA")
        a.client = certs.make_client(a.ca, f"swarmml {cluster} client")
    if "ssh" in kinds:
        a.host_key = certs.make_ssh_key(alias(cluster))
        a.user_key = certs.make_ssh_key(f"swarmml {cluster} client")
    return a


def write_client(a: Authority, client_dir: str) -> dict:
    """The client's side (a DOCKER_CERT_PATH, the SSH identity and the host key to trust); returns what it wrote."""
    os.makedirs(client_dir, mode=0o700, exist_ok=True)
    made = {}
    if a.ca is not None:
        _write(client_dir, {"ca.pem": a.ca.cert, "cert.pem": a.client.cert, "key.pem": a.client.key})
        made["tls"] = client_dir
    if a.host_key is not None:
        _write(client_dir, {"id_ed25519": a.user_key.private, "id_ed25519.pub": a.user_key.public.encode() + b"\n",
                            "host_key.pub": a.host_key.public.encode() + b"\n"})
        made["ssh"] = client_dir
    return made


def write_manager(cluster: str, a: Authority, node_dir: str, names) -> None:
    """One manager's side: its engine certificate for names (its bridge IP, 127.0.0.1, ...), the host key,
    authorized_keys. Written last, `ready` lets NODE_SCRIPT go on."""
    os.makedirs(node_dir, mode=0o700, exist_ok=True)
    if a.ca is not None:
        server = certs.make_server(a.ca, f"swarmml {cluster} manager", names)
        _write(node_dir, {"ca.pem": a.ca.cert, "server-cert.pem": server.cert, "server-key.pem": server.key})
    if a.host_key is not None:
        _write(node_dir, {"ssh_host_ed25519_key": a.host_key.private,
                          "authorized_keys": a.user_key.public.encode() + b"\n"})
    _write(node_dir, {"ready": b""})


def _write(directory, files):
    for fname, data in files.items():
        path = os.path.join(directory, fname)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)


def save_record(path: str, record: dict) -> None:
    with open(path, "w") as f:
        json.dump(record, f)


def load_record(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def record(cluster: str, kinds, ports: dict, client_dir: str) -> dict:
    """Pure: what expose.json says: kinds, host ports, the client dir, and every URL that reaches this manager."""
    urls = []
    if "tls" in kinds and ports.get("tls"):
        urls.append(f"tcp://127.0.0.1:{ports['tls']}")
    if "ssh" in kinds and ports.get("ssh"):
        urls += [ssh_url(cluster, ports["ssh"]), f"ssh://root@127.0.0.1:{ports['ssh']}"]
    return {"kinds": list(kinds), "ports": ports, "client_dir": client_dir, "urls": urls}


# --- what a shell and the docker CLI need (pure text) ---------------------------------

def env_lines(cluster: str, via: str, rec: dict) -> list[str]:
    """The shell lines that point the docker CLI (and swarmml) at the manager over ssh or tls."""
    if via not in rec.get("kinds", []):
        raise UsageError(f"cluster {cluster!r} is not exposed over {via}; `swarmml cluster up --name {cluster} "
                         f"--expose {via}` exposes it in place (its stacks are kept)")
    if via == "tls":
        return [f"export DOCKER_HOST=tcp://127.0.0.1:{rec['ports']['tls']}", "export DOCKER_TLS_VERIFY=1",
                f"export DOCKER_CERT_PATH={rec['client_dir']}", "unset DOCKER_CONTEXT"]
    return [f"export DOCKER_HOST={ssh_url(cluster, rec['ports']['ssh'])}",
            "unset DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_CONTEXT"]


def ssh_url(cluster: str, port: int) -> str:
    """ssh://root@swarmml-<name>:<port>: the alias finds the key in ~/.ssh/config; the port is in the URL
    because the SDK puts :22 on an ssh:// URL without one, and that beats the config's Port."""
    return f"ssh://root@{alias(cluster)}:{port}"


def _markers(cluster, remover=None):
    """remover: the command that takes the block out again (a local cluster's `down` by default)."""
    remover = remover or f"swarmml cluster down --name {cluster}"
    begin = f"# >>> swarmml cluster {cluster} (written by swarmml; `{remover}` removes it)"
    return begin, f"# <<< swarmml cluster {cluster}"


def ssh_config_block(cluster: str, port: int, key_path: str, managers=()) -> str:
    """The alias for node1's published port, and the managers' bridge addresses (where a client that
    lost node1 goes: engine/peers.py), all with the cluster's key."""
    begin, end = _markers(cluster)
    key = [f"    IdentityFile {key_path}", "    IdentitiesOnly yes"]
    lines = [begin, f"Host {alias(cluster)}", "    HostName 127.0.0.1", f"    Port {port}", "    User root", *key]
    if managers:
        lines += [f"Host {' '.join(managers)}", "    User root", *key]
    return "\n".join(lines + [end, ""])


def without_block(text: str, cluster: str, remover: str | None = None) -> str:
    """Pure: ssh config text with this cluster's block taken out (anything else is kept as it was)."""
    begin, end = _markers(cluster, remover)
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.rstrip("\n") == begin:
            skipping = True
            continue
        if skipping:
            if line.rstrip("\n") == end:
                skipping = False
            continue
        out.append(line)
    return "".join(out)


def with_block(text: str, cluster: str, block: str, remover: str | None = None) -> str:
    """Pure: the block goes first, since ssh takes the first value it finds for each option."""
    return block + without_block(text, cluster, remover)


def identity_block(cluster: str, hosts, key_path: str, remover: str) -> str:
    """Pure: an ssh config block that logs in to each of hosts with key_path (the docker CLI and the SDK
    read ~/.ssh/config, and neither has an option for a key)."""
    begin, end = _markers(cluster, remover)
    return "\n".join([begin, f"Host {' '.join(hosts)}", f"    IdentityFile {key_path}", "    IdentitiesOnly yes",
                      end, ""])


def known_hosts_line(cluster: str, port: int, host_public: str, host: str = "127.0.0.1") -> str:
    keytype, key = host_public.split()[:2]
    where = host if port == SSH_PORT else f"[{host}]:{port}"
    return f"{where} {keytype} {key} {alias(cluster)}\n"


def without_known_host(text: str, cluster: str, port: int | None = None) -> str:
    """Pure: known_hosts without lines swarmml wrote for this cluster,
    nor those of any swarmml cluster for the same port."""
    out = []
    for line in text.splitlines(keepends=True):
        fields = line.split()
        ours = len(fields) >= 4 and fields[3] == alias(cluster)
        stale = (port is not None and len(fields) >= 4 and fields[0] == f"[127.0.0.1]:{port}"
                 and re.fullmatch(r"swarmml-[a-z0-9-]+", fields[3]) is not None)
        if not (ours or stale):
            out.append(line)
    return "".join(out)


def install_ssh(home: str, cluster: str, port: int, client_dir: str, managers=()) -> tuple[str, str]:
    """Writes ~/.ssh/config and ~/.ssh/known_hosts for this cluster (node1's published port, and the
    managers' bridge addresses on port 22); returns their paths."""
    ssh_dir = os.path.join(home, ".ssh")
    os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
    config, known = os.path.join(ssh_dir, "config"), os.path.join(ssh_dir, "known_hosts")
    with open(os.path.join(client_dir, "host_key.pub")) as f:
        host_public = f.read().strip()
    key = os.path.join(client_dir, "id_ed25519")
    rewrite_file(config, lambda t: with_block(t, cluster, ssh_config_block(cluster, port, key, managers)))
    rewrite_file(known, lambda t: without_known_host(t, cluster, port) + known_hosts_line(cluster, port, host_public)
                 + "".join(known_hosts_line(cluster, SSH_PORT, host_public, ip) for ip in managers))
    return config, known


def remove_ssh(home: str, cluster: str) -> None:
    """Takes this cluster's block and host key out of ~/.ssh (writes files, if they hold any)."""
    ssh_dir = os.path.join(home, ".ssh")
    rewrite_file(os.path.join(ssh_dir, "config"), lambda t: without_block(t, cluster), create=False)
    rewrite_file(os.path.join(ssh_dir, "known_hosts"), lambda t: without_known_host(t, cluster), create=False)


def rewrite_file(path, change, create=True):
    """path's text through change(text), written back (atomically, 0600) only if it changed."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        if not create:
            return
        text = ""
    new = change(text)
    if new != text:
        tmp = path + ".swarmml-tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(new)
        os.replace(tmp, path)


def write_context(cfg_dir: str, cluster: str, via: str, rec: dict) -> str:
    """Writes docker context swarmml-<cluster> into the context store (as `docker context create` would)."""
    env_lines(cluster, via, rec)  # the same check: was it exposed that way?
    tls = None
    if via == "tls":
        host = f"tcp://127.0.0.1:{rec['ports']['tls']}"
        tls = {}
        for kind in ("ca", "cert", "key"):
            with open(os.path.join(rec["client_dir"], f"{kind}.pem"), "rb") as f:
                tls[kind] = f.read()
    else:
        host = ssh_url(cluster, rec["ports"]["ssh"])
    name = alias(cluster)
    # A context that existed keeps no stale TLS files from an earlier cluster.
    shutil.rmtree(os.path.dirname(endpoint.tls_dir(cfg_dir, name)), ignore_errors=True)
    for rel, data in endpoint.context_files(name, host, f"swarmml cluster {cluster} over {via}", tls).items():
        path = os.path.join(cfg_dir, rel)
        os.makedirs(os.path.dirname(path), mode=0o755 if rel.startswith("contexts/meta") else 0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if rel.endswith(".pem") else 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    return name


def remove_context(cfg_dir: str, cluster: str) -> bool:
    """Removes context swarmml-<cluster> if swarmml wrote it; if it was the current one, the current one
    becomes the default again (as `docker context rm --force` does). True if there was one."""
    name = alias(cluster)
    meta = endpoint.meta_path(cfg_dir, name)
    if not os.path.exists(meta):
        return False
    shutil.rmtree(os.path.dirname(meta), ignore_errors=True)
    shutil.rmtree(os.path.dirname(endpoint.tls_dir(cfg_dir, name)), ignore_errors=True)
    if endpoint.current_context(cfg_dir) == name:
        path = os.path.join(cfg_dir, "config.json")
        with open(path) as f:
            data = json.load(f)
        data.pop("currentContext", None)
        rewrite_file(path, lambda _: json.dumps(data, indent="\t") + "\n")
    return True
