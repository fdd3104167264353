"""Which engine swarmml talks to: the docker CLI's precedence, the context store, TLS from the environment.

Pure unit tests over env dicts and real files in tmp dirs (contexts written the
way `docker context create` lays them out); no engine is needed.
"""
import hashlib
import json
import os
import socket

import pytest

from swarmml.engine import endpoint as ep
from swarmml.errors import NotFound, UsageError


def write_context(cfg, name, host, tls=(), skip=False):
    cid = hashlib.sha256(name.encode()).hexdigest()
    meta = cfg / "contexts" / "meta" / cid
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Name": name, "Metadata": {},
                                                "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": skip}}}))
    if tls:
        tdir = cfg / "contexts" / "tls" / cid / "docker"
        tdir.mkdir(parents=True)
        for kind in tls:
            (tdir / f"{kind}.pem").write_text(f"-- {kind} --")
    return cid


def use(cfg, name):
    (cfg / "config.json").write_text(json.dumps({"auths": {}, "currentContext": name}))


@pytest.fixture
def cfg(tmp_path):
    d = tmp_path / "docker"
    d.mkdir()
    return d


def env_for(cfg, **extra):
    return {"DOCKER_CONFIG": str(cfg), **extra}


# --- precedence (resolveContextName) -----------------------------------------------

def test_context_name_order():
    env = {"DOCKER_HOST": "tcp://h:1", "DOCKER_CONTEXT": "envctx"}
    assert ep.context_name(None, "flag", env, "cur") == ("flag", "--context")
    assert ep.context_name("tcp://x:1", None, env, "cur") == ("default", "--host")
    assert ep.context_name(None, None, env, "cur") == ("default", "DOCKER_HOST")
    assert ep.context_name(None, None, {"DOCKER_CONTEXT": "envctx"}, "cur")[0] == "envctx"
    assert ep.context_name(None, None, {}, "cur")[0] == "cur"
    assert ep.context_name(None, None, {}, None) == ("default", "default")
    with pytest.raises(UsageError, match="either --host or --context"):
        ep.context_name("tcp://x:1", "c", {}, None)


def test_context_flag_beats_docker_host(cfg):
    write_context(cfg, "prod", "tcp://prod.example:2376")
    got = ep.resolve(env_for(cfg, DOCKER_HOST="unix:///x.sock"), context="prod")
    assert got.host == "tcp://prod.example:2376" and got.context == "prod" and "--context" in got.reason


def test_docker_host_beats_docker_context_and_current(cfg):
    write_context(cfg, "envctx", "tcp://a:1")
    use(cfg, "cur")  # does not exist, and is not even read
    got = ep.resolve(env_for(cfg, DOCKER_HOST="ssh://me@box", DOCKER_CONTEXT="envctx"))
    assert (got.host, got.reason, got.context) == ("ssh://me@box", "DOCKER_HOST", "default")


def test_docker_context_beats_current_context(cfg):
    write_context(cfg, "envctx", "tcp://a:2375")
    write_context(cfg, "cur", "tcp://b:2375")
    use(cfg, "cur")
    assert ep.resolve(env_for(cfg, DOCKER_CONTEXT="envctx")).host == "tcp://a:2375"


def test_current_context_from_config_json(cfg):
    write_context(cfg, "cur", "ssh://ops@swarm-1:2222")
    use(cfg, "cur")
    got = ep.resolve(env_for(cfg))
    assert got.host == "ssh://ops@swarm-1:2222" and "docker context use" in got.reason and got.explicit


def test_host_flag_beats_current_context(cfg):
    write_context(cfg, "cur", "tcp://b:2375")
    use(cfg, "cur")
    assert ep.resolve(env_for(cfg), host="unix:///tmp/d.sock").host == "unix:///tmp/d.sock"


def test_nothing_configured_is_the_local_socket_and_not_explicit(cfg):
    got = ep.resolve(env_for(cfg))
    assert got.host == ep.DEFAULT_SOCKET and not got.explicit


def test_context_named_default_is_the_environment(cfg):
    assert ep.resolve(env_for(cfg, DOCKER_CONTEXT="default")).host == ep.DEFAULT_SOCKET
    use(cfg, "default")
    assert not ep.resolve(env_for(cfg)).explicit


def test_config_dir_is_docker_config_else_home(tmp_path):
    assert ep.config_dir({"DOCKER_CONFIG": "/x"}) == "/x"
    assert ep.config_dir({"HOME": str(tmp_path)}) == str(tmp_path / ".docker")


def test_home_dot_docker_is_read_without_docker_config(tmp_path):
    write_context(tmp_path / ".docker", "c", "tcp://c:2375")
    use(tmp_path / ".docker", "c")
    assert ep.resolve({"HOME": str(tmp_path)}).host == "tcp://c:2375"


# --- the context store ---------------------------------------------------------------

def test_context_dir_is_sha256_of_the_name(cfg):
    cid = write_context(cfg, "my ctx", "tcp://h:2375")
    assert ep.context_id("my ctx") == cid
    assert ep.meta_path(str(cfg), "my ctx") == str(cfg / "contexts" / "meta" / cid / "meta.json")


def test_unknown_context_is_one_line_naming_the_known_ones(cfg):
    write_context(cfg, "prod", "tcp://h:2375")
    write_context(cfg, "stage", "tcp://h:2375")
    with pytest.raises(NotFound) as exc:
        ep.resolve(env_for(cfg), context="prdo")
    msg = str(exc.value)
    assert "context 'prdo' does not exist" in msg and "prod, stage" in msg and "\n" not in msg


def test_current_context_that_does_not_exist_is_an_error(cfg):
    use(cfg, "gone")
    with pytest.raises(NotFound, match="'gone' does not exist"):
        ep.resolve(env_for(cfg))


def test_broken_meta_and_config_are_one_line(cfg):
    cid = write_context(cfg, "bad", "tcp://h:1")
    (cfg / "contexts" / "meta" / cid / "meta.json").write_text("{not json")
    with pytest.raises(UsageError, match="can't read"):
        ep.resolve(env_for(cfg), context="bad")
    (cfg / "config.json").write_text("[")
    with pytest.raises(UsageError, match="can't read the docker config"):
        ep.resolve(env_for(cfg))


def test_context_without_docker_endpoint(cfg):
    cid = write_context(cfg, "k8s", "tcp://h:1")
    (cfg / "contexts" / "meta" / cid / "meta.json").write_text(json.dumps({"Name": "k8s", "Endpoints": {}}))
    with pytest.raises(UsageError, match="no docker endpoint"):
        ep.resolve(env_for(cfg), context="k8s")


def test_context_tls_material(cfg):
    write_context(cfg, "tls", "tcp://h:2376", tls=("ca", "cert", "key"))
    got = ep.resolve(env_for(cfg), context="tls")
    tdir = os.path.join(str(cfg), "contexts", "tls", ep.context_id("tls"), "docker")
    assert got.tls == ep.TlsFiles(f"{tdir}/ca.pem", f"{tdir}/cert.pem", f"{tdir}/key.pem", True)
    assert "mutual TLS" in got.describe()


def test_context_skip_tls_verify_and_no_tls(cfg):
    write_context(cfg, "skip", "tcp://h:2376", tls=("ca",), skip=True)
    assert ep.resolve(env_for(cfg), context="skip").tls == ep.TlsFiles(
        os.path.join(str(cfg), "contexts", "tls", ep.context_id("skip"), "docker", "ca.pem"), None, None, False)
    write_context(cfg, "plain", "tcp://h:2375")
    assert ep.resolve(env_for(cfg), context="plain").tls is None


def test_context_cert_without_key(cfg):
    write_context(cfg, "half", "tcp://h:2376", tls=("ca", "cert"))
    with pytest.raises(UsageError, match="cert.pem without its key.pem"):
        ep.resolve(env_for(cfg), context="half")


def test_context_files_round_trip(cfg):
    files = ep.context_files("swarmml-x", "tcp://127.0.0.1:1234", "d", {"ca": b"CA", "cert": b"C", "key": b"K"})
    for rel, data in files.items():
        path = cfg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert ep.list_contexts(str(cfg)) == ["swarmml-x"]
    got = ep.resolve(env_for(cfg), context="swarmml-x")
    assert got.host == "tcp://127.0.0.1:1234" and got.tls.cert.endswith("cert.pem") and got.tls.verify


# --- DOCKER_TLS_VERIFY, DOCKER_TLS, DOCKER_CERT_PATH ----------------------------------

def certs_in(d, *kinds):
    d.mkdir(exist_ok=True)
    for k in kinds:
        (d / f"{k}.pem").write_text(k)
    return d


def test_tls_verify_with_cert_path(cfg, tmp_path):
    d = certs_in(tmp_path / "certs", "ca", "cert", "key")
    got = ep.resolve(env_for(cfg, DOCKER_HOST="tcp://h", DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(d)))
    assert got.host == "tcp://h:2376"  # the TLS port when none is given
    assert got.tls == ep.TlsFiles(str(d / "ca.pem"), str(d / "cert.pem"), str(d / "key.pem"), True)


def test_tls_verify_any_non_empty_value_and_certs_from_config_dir(cfg):
    certs_in(cfg, "ca", "cert", "key")
    got = ep.resolve(env_for(cfg, DOCKER_HOST="tcp://h:1", DOCKER_TLS_VERIFY="0"))
    assert got.tls.verify and got.tls.ca == str(cfg / "ca.pem")


def test_docker_tls_alone_does_not_verify(cfg, tmp_path):
    d = certs_in(tmp_path / "c", "cert", "key")
    got = ep.resolve(env_for(cfg, DOCKER_HOST="tcp://h:1", DOCKER_TLS="1", DOCKER_CERT_PATH=str(d)))
    assert got.tls == ep.TlsFiles(None, str(d / "cert.pem"), str(d / "key.pem"), False)
    assert "not checked" in got.describe()


def test_cert_path_alone_is_not_tls(cfg, tmp_path):
    d = certs_in(tmp_path / "c", "ca", "cert", "key")
    got = ep.resolve(env_for(cfg, DOCKER_HOST="tcp://h", DOCKER_CERT_PATH=str(d)))
    assert got.tls is None and got.host == "tcp://h:2375"


def test_tls_verify_without_ca_is_one_line(cfg, tmp_path):
    with pytest.raises(UsageError, match="no CA certificate at .*ca.pem"):
        ep.resolve(env_for(cfg, DOCKER_HOST="tcp://h:1", DOCKER_TLS_VERIFY="1",
                           DOCKER_CERT_PATH=str(tmp_path / "none")))


def test_tls_verify_without_client_cert_is_one_way(cfg, tmp_path):
    d = certs_in(tmp_path / "c", "ca")
    got = ep.resolve(env_for(cfg, DOCKER_HOST="tcp://h:1", DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(d)))
    assert got.tls.cert is None and got.tls.key is None


def test_tls_env_is_ignored_for_a_named_context(cfg, tmp_path):
    write_context(cfg, "plain", "tcp://h:2375")
    d = certs_in(tmp_path / "c", "ca", "cert", "key")
    got = ep.resolve(env_for(cfg, DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(d)), context="plain")
    assert got.tls is None


# --- host syntax ---------------------------------------------------------------------

@pytest.mark.parametrize("raw,tls,want", [
    ("unix:///var/run/docker.sock", False, "unix:///var/run/docker.sock"),
    ("tcp://10.0.0.1:2375", False, "tcp://10.0.0.1:2375"),
    ("tcp://10.0.0.1", False, "tcp://10.0.0.1:2375"),
    ("tcp://10.0.0.1", True, "tcp://10.0.0.1:2376"),
    ("10.0.0.1:4243", False, "tcp://10.0.0.1:4243"),
    ("ssh://ops@box", False, "ssh://ops@box"),
    ("ssh://ops@box:2222", False, "ssh://ops@box:2222"),
    (" tcp://h:1 ", False, "tcp://h:1"),
])
def test_normalize_host(raw, tls, want):
    assert ep.normalize_host(raw, tls) == want


@pytest.mark.parametrize("raw,msg", [
    ("http://h:1", "unknown scheme 'http'"), ("", "empty engine address"), ("tcp://:2375", "no host name"),
    ("tcp://h:99999", "out of range"), ("unix://", "no socket path"), ("tcp://h:1/path", "a path"),
])
def test_bad_hosts_are_one_line(raw, msg):
    with pytest.raises(UsageError, match=msg):
        ep.normalize_host(raw)


# --- what a failure to connect means ------------------------------------------------------

class BadHostKeyException(Exception):
    pass


class SSLError(Exception):
    pass


class AuthenticationException(Exception):
    pass


@pytest.mark.parametrize("exc,want", [
    (BadHostKeyException("Host key for server '127.0.0.1' does not match: got 'AAAA', expected 'BBBB'"),
     ("does not match the one in ~/.ssh/known_hosts; if the host was rebuilt, remove the old key with "
      "`ssh-keygen -R '[127.0.0.1]:2222'`")),
    (Exception("Server '[127.0.0.1]:2222' not found in known_hosts"), "is not in ~/.ssh/known_hosts"),
    (AuthenticationException("Authentication failed."), "SSH login to ssh://me@box:2222 was refused"),
    (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
    (OSError(113, "No route to host"), "no route to ssh://me@box:2222"),
    (socket.gaierror(-2, "Name or service not known"), "no route to"),
])
def test_ssh_failures_are_one_line(exc, want):
    got = ep.explain_failure(exc, "ssh://me@box:2222")
    assert want in got and "\n" not in got


@pytest.mark.parametrize("text,want", [
    (("HTTPSConnectionPool(host='127.0.0.1', port=1): Max retries exceeded (Caused by SSLError(SSLCertVerificationError"
      "(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate')))"),
     "showed a TLS certificate this CA does not vouch for"),
    ("(Caused by SSLError(SSLError(1, '[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca (_ssl.c:2580)')))",
     "refused our TLS client certificate"),
    ("(Caused by SSLError(SSLError(1, '[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required')))",
     "refused our TLS client certificate"),
])
def test_tls_failures_are_one_line(text, want):
    got = ep.explain_failure(SSLError(text), "tcp://127.0.0.1:1")
    assert want in got and "\n" not in got and len(got) < 300


def test_host_key_mismatch_without_paramikos_wording_names_the_url_host():
    assert "ssh-keygen -R '[box]:2222'" in ep.explain_failure(BadHostKeyException("mismatch"), "ssh://me@box:2222")


def test_hostkey_name():
    assert ep.hostkey_name("ssh://u@h") == "h"
    assert ep.hostkey_name("ssh://u@h:22") == "h"
    assert ep.hostkey_name("ssh://u@h:2200") == "[h]:2200"
