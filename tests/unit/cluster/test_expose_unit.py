"""The pieces of `cluster up --expose ssh,tls` that need no engine: certificates, ssh config text, env lines,
contexts."""
import json
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from swarmml.cluster import certs, expose
from swarmml.engine import cluster_at, endpoint
from swarmml.errors import UsageError


def test_parse_kinds():
    assert expose.parse_kinds("tls,ssh") == ("ssh", "tls")
    assert expose.parse_kinds(" ssh ") == ("ssh",)
    assert expose.parse_kinds("") == ()
    with pytest.raises(UsageError, match="--expose: expected ssh, tls"):
        expose.parse_kinds("ssh,http")


def test_certificates_chain_and_usages(tmp_path):
    ca = certs.make_ca("t CA")
    server = certs.make_server(ca, "t manager", ["172.30.0.3", "127.0.0.1", "localhost", "node1"])
    client = certs.make_client(ca, "t client")
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    srv = x509.load_pem_x509_certificate(server.cert)
    cli = x509.load_pem_x509_certificate(client.cert)
    for c in (srv, cli):
        c.verify_directly_issued_by(ca_cert)
    sans = srv.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(i) for i in sans.get_values_for_type(x509.IPAddress)] == ["172.30.0.3", "127.0.0.1"]
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "node1"]
    assert srv.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    assert cli.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # Python's ssl (what requests uses) accepts them as a server and a client pair.
    for name, data in (("ca.pem", ca.cert), ("s.pem", server.cert), ("s.key", server.key),
                       ("c.pem", client.cert), ("c.key", client.key)):
        (tmp_path / name).write_bytes(data)
    ssl.create_default_context(cafile=str(tmp_path / "ca.pem")).load_cert_chain(tmp_path / "c.pem", tmp_path / "c.key")
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(tmp_path / "s.pem", tmp_path / "s.key")


def test_ssh_key_formats():
    key = certs.make_ssh_key("swarmml-x")
    assert key.private.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    assert key.public.startswith("ssh-ed25519 ") and key.public.endswith(" swarmml-x")
    serialization.load_ssh_private_key(key.private, password=None)


def test_ssh_config_block_is_replaced_and_removed_leaving_the_rest():
    mine = "Host work\n    User me\n"
    once = expose.with_block(mine, "a", expose.ssh_config_block("a", 1111, "/k"))
    assert once.startswith("# >>> swarmml cluster a") and once.endswith(mine) and "Port 1111" in once
    twice = expose.with_block(once, "a", expose.ssh_config_block("a", 2222, "/k"))
    assert "Port 1111" not in twice and twice.count("Host swarmml-a") == 1
    other = expose.with_block(twice, "b", expose.ssh_config_block("b", 3333, "/k"))
    assert expose.without_block(expose.without_block(other, "a"), "b") == mine


def test_known_hosts_lines():
    pub = certs.make_ssh_key().public
    line = expose.known_hosts_line("a", 4000, pub)
    assert line.startswith("[127.0.0.1]:4000 ssh-ed25519 ") and line.endswith(" swarmml-a\n")
    theirs = "github.com ssh-ed25519 AAAA\n[127.0.0.1]:4000 ssh-rsa BBBB user-comment\n"
    stale = expose.known_hosts_line("old", 4000, pub)
    text = theirs + stale + line
    assert expose.without_known_host(text, "a", 4000) == theirs  # ours and a stale swarmml line for the port
    assert expose.without_known_host(text, "a") == theirs + stale


def test_env_lines_and_record():
    rec = expose.record("a", ["ssh", "tls"], {"ssh": 4000, "tls": 4001}, "/run/swarmml/a/client")
    assert rec["urls"] == ["tcp://127.0.0.1:4001", "ssh://root@swarmml-a:4000", "ssh://root@127.0.0.1:4000"]
    assert expose.env_lines("a", "tls", rec) == [
        "export DOCKER_HOST=tcp://127.0.0.1:4001", "export DOCKER_TLS_VERIFY=1",
        "export DOCKER_CERT_PATH=/run/swarmml/a/client", "unset DOCKER_CONTEXT"]
    assert expose.env_lines("a", "ssh", rec)[0] == "export DOCKER_HOST=ssh://root@swarmml-a:4000"
    with pytest.raises(UsageError, match=r"not exposed over tls; `swarmml cluster up --name a --expose tls` exposes "
                       "it in place"):
        expose.env_lines("a", "tls", expose.record("a", ["ssh"], {"ssh": 1}, "/c"))


def test_cluster_recognized_from_its_exposed_urls_and_socket(tmp_path, monkeypatch):
    from swarmml import engine
    monkeypatch.setattr(engine, "SOCKET_ROOT", str(tmp_path))
    (tmp_path / "a").mkdir()
    rec = expose.record("a", ["ssh", "tls"], {"ssh": 4000, "tls": 4001}, "/c")
    (tmp_path / "a" / "expose.json").write_text(json.dumps(rec))
    assert cluster_at("tcp://127.0.0.1:4001") == "a"
    assert cluster_at("ssh://root@swarmml-a:4000") == "a"
    assert cluster_at("tcp://127.0.0.1:9") is None
    (tmp_path / "a" / "node1").mkdir()
    (tmp_path / "a" / "node1" / "docker.sock").write_text("")
    (tmp_path / "a" / "docker.sock").symlink_to(tmp_path / "a" / "node1" / "docker.sock")
    assert cluster_at(f"unix://{tmp_path}/a/node1/docker.sock") == "a"
    assert cluster_at(f"unix://{tmp_path}/a/docker.sock") == "a"
    assert cluster_at("unix:///var/run/docker.sock") is None


def test_context_written_as_the_docker_cli_reads_it(tmp_path):
    client = tmp_path / "client"
    client.mkdir()
    for k in ("ca", "cert", "key"):
        (client / f"{k}.pem").write_bytes(k.encode())
    cfg = tmp_path / "docker"
    rec = expose.record("a", ["ssh", "tls"], {"ssh": 4000, "tls": 4001}, str(client))
    assert expose.write_context(str(cfg), "a", "tls", rec) == "swarmml-a"
    got = endpoint.resolve({"DOCKER_CONFIG": str(cfg)}, context="swarmml-a")
    assert got.host == "tcp://127.0.0.1:4001" and got.tls.verify and Path(got.tls.cert).read_text() == "cert"
    expose.write_context(str(cfg), "a", "ssh", rec)  # the same name, now over ssh: no TLS files left behind
    got = endpoint.resolve({"DOCKER_CONFIG": str(cfg)}, context="swarmml-a")
    assert got.host == "ssh://root@swarmml-a:4000" and got.tls is None
    (cfg / "config.json").write_text(json.dumps({"auths": {"r": {}}, "currentContext": "swarmml-a"}))
    assert expose.remove_context(str(cfg), "a")
    assert json.loads((cfg / "config.json").read_text()) == {"auths": {"r": {}}}
    assert endpoint.list_contexts(str(cfg)) == [] and not expose.remove_context(str(cfg), "a")


def test_install_and_remove_ssh(tmp_path):
    client = tmp_path / "client"
    client.mkdir()
    (client / "host_key.pub").write_text(certs.make_ssh_key("swarmml-a").public + "\n")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Host x\n  User y\n")
    config, known = expose.install_ssh(str(home), "a", 4000, str(client), ["172.20.0.3", "172.20.0.4"])
    assert "Host swarmml-a" in Path(config).read_text() and "[127.0.0.1]:4000" in Path(known).read_text()
    # the other managers, where a client that lost node1 goes (engine/peers.py): the same key, port 22
    assert "Host 172.20.0.3 172.20.0.4\n    User root\n    IdentityFile " in Path(config).read_text()
    hosts = [line.split()[0] for line in Path(known).read_text().splitlines()]
    assert hosts == ["[127.0.0.1]:4000", "172.20.0.3", "172.20.0.4"]
    expose.remove_ssh(str(home), "a")
    assert Path(config).read_text() == "Host x\n  User y\n" and Path(known).read_text() == ""
