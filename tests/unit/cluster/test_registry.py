"""Push targets, the registry's login material and the lines for failed pushes (no engine needed).

The error texts are what Docker Engine 20.10 answered to real pushes: against a cluster
registry started with --registry-auth (no login, a wrong password, its CA not trusted), an
unknown host and a closed port.
"""
import bcrypt
import pytest
from cryptography import x509

from swarmml.cluster import registry
from swarmml.errors import UsageError
from swarmml.ops.rollout import crash_loop_line
from swarmml.stack.plan import Action, Plan, send_credentials

ENGINE_SAID = {
    "no login": "no basic auth credentials",
    "wrong password": "unauthorized: authentication required",
    "untrusted": 'Get "https://172.20.0.2:5000/v2/": x509: certificate signed by unknown authority',
    "no such host": 'Get "https://nohost.invalid:5000/v2/": dial tcp: lookup nohost.invalid on 10.255.255.53:53: '
                    "no such host",
    "refused": 'Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused',
}


@pytest.mark.parametrize("value, push, host", [
    ("ghcr.io/acme", "ghcr.io/acme", "ghcr.io"),
    ("registry.example:5000", "registry.example:5000", "registry.example:5000"),
    ("10.0.0.5:5000/team/ml/", "10.0.0.5:5000/team/ml", "10.0.0.5:5000"),
    ("localhost:5000", "localhost:5000", "localhost:5000"),
    ("localhost", "localhost", "localhost"),
])
def test_a_push_target_names_a_registry_and_an_optional_prefix(value, push, host):
    t = registry.parse_target(value)
    assert (t.push_prefix, t.pull_prefix, t.registry, t.login) == (push, push, host, False)
    assert registry.refs(t, "swarmml/predictor:2") == (f"{push}/swarmml/predictor:2", f"{push}/swarmml/predictor:2")


@pytest.mark.parametrize("value, says", [
    ("acme", "starting with a registry host"),  # a Docker Hub namespace, not a registry
    ("acme/models", "starting with a registry host"),
    ("bad_host.io", "starting with a registry host"),
    ("ghcr.io/Acme", "'Acme' in 'ghcr.io/Acme' is not a valid repository path component"),
    ("ghcr.io/a//b", "'' in 'ghcr.io/a//b'"),
])
def test_a_bad_push_target_is_one_line_naming_it(value, says):
    with pytest.raises(UsageError, match="^--push: ") as err:
        registry.parse_target(value)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_plain_cluster_registry_is_pushed_on_loopback_and_pulled_by_its_alias():
    plain = registry.cluster_target("127.0.0.1:41234", login=False)
    assert registry.refs(plain, "swarmml/tiny:1") == ("127.0.0.1:41234/swarmml/tiny:1", "registry:5000/swarmml/tiny:1")
    # With a login both sides use one address, so that one `docker login` serves the push and the pulls.
    authed = registry.cluster_target("172.20.0.2:5000", login=True)
    assert registry.refs(authed, "swarmml/tiny:1") == ("172.20.0.2:5000/swarmml/tiny:1",) * 2
    assert authed.registry == "172.20.0.2:5000" and authed.login


@pytest.mark.parametrize("case, user, line", [
    ("no login", None, "registry R asks for a login and the docker config has none for it: run `docker login R`"),
    ("wrong password", "swarmml",
     "registry R refused the login of 'swarmml' kept in the docker config: run `docker login R` again"),
    ("wrong password", None, "registry R asks for a login and the docker config has none for it: "
                             "run `docker login R`"),
    ("no such host", None, "registry R can't be reached (no such host): check its name and port"),
    ("refused", None, "registry R can't be reached (connection refused): check its name and port"),
])
def test_a_failed_push_says_what_to_do(case, user, line):
    assert registry.explain_push("R", ENGINE_SAID[case], user) == line


def test_an_untrusted_registry_certificate_says_where_the_ca_goes():
    line = registry.explain_push("172.20.0.2:5000", ENGINE_SAID["untrusted"], "swarmml")
    assert line.startswith("the engine does not trust registry 172.20.0.2:5000's TLS certificate: put its CA in "
                           "/etc/docker/certs.d/172.20.0.2:5000/ca.crt")


def test_an_unknown_push_failure_keeps_the_engines_words():
    assert registry.explain_push("R", "blob upload unknown\n", "u") == "pushing to R failed: blob upload unknown"


def test_the_htpasswd_line_is_bcrypt_and_checks_the_password():
    line = registry.htpasswd_line("swarmml", "s3cret")
    user, _, hashed = line.rstrip(b"\n").partition(b":")
    assert user == b"swarmml" and hashed.startswith(b"$2")
    assert bcrypt.checkpw(b"s3cret", hashed) and not bcrypt.checkpw(b"other", hashed)


def test_material_names_the_address_and_keeps_the_password(tmp_path):
    d = str(tmp_path / "registry")
    registry.prepare(d)
    password = registry.write_material("c1", d, "172.20.0.2:5000", ["registry", "localhost"])
    assert (tmp_path / "registry" / "ready").exists()
    assert registry.read_address(d) == "172.20.0.2:5000" and registry.read_password(d) == password
    # The certificate is the CA's, for the bridge address and the alias.
    cert = x509.load_pem_x509_certificate((tmp_path / "registry" / "cert.pem").read_bytes())
    ca = x509.load_pem_x509_certificate(registry.ca_pem(d))
    assert cert.issuer == ca.subject
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["172.20.0.2"]
    assert sans.get_values_for_type(x509.DNSName) == ["registry", "localhost"]
    # The password and the CA's key never leave root; what the registry reads is readable by its user.
    assert (tmp_path / "registry" / "password").stat().st_mode & 0o077 == 0
    assert (tmp_path / "registry" / "key.pem").stat().st_mode & 0o004
    # Certificates made again (a new address) keep the password, so existing logins stay valid.
    assert registry.write_material("c1", d, "172.20.0.9:5000", []) == password
    assert registry.read_address(d) == "172.20.0.9:5000"


def test_trusting_a_registry_writes_its_ca_where_the_engine_looks_and_undoes_it(tmp_path):
    path = registry.trust_on_host("172.20.0.2:5000", b"CA", root=str(tmp_path))
    assert path == str(tmp_path / "172.20.0.2:5000" / "ca.crt") and open(path, "rb").read() == b"CA"
    registry.untrust_on_host("172.20.0.2:5000", root=str(tmp_path))
    assert not (tmp_path / "172.20.0.2:5000").exists()


def test_with_registry_auth_updates_services_whose_spec_did_not_change():
    p = Plan("ml", [Action("network", "ml_default", "unchanged"), Action("service", "ml_predictor", "unchanged"),
                    Action("service", "ml_gateway", "update", [("TaskTemplate.ContainerSpec.Image", "a", "b")]),
                    Action("service", "ml_public", "unchanged")])
    send_credentials(p, {"ml_predictor", "ml_gateway"})
    got = {a.name: (a.action, [c[0] for c in a.changes]) for a in p.actions}
    assert got == {"ml_default": ("unchanged", []),
                   "ml_predictor": ("update", ["registry credentials"]),
                   "ml_gateway": ("update", ["TaskTemplate.ContainerSpec.Image", "registry credentials"]),
                   "ml_public": ("unchanged", [])}  # no login for its registry: nothing to hand over
    assert p.changes_anything


def test_a_node_that_may_not_pull_is_told_about_the_login():
    failing = [(1, 3, "No such image: 172.20.0.2:5000/swarmml/tiny:1@sha256:e91f", "t1")]
    line = crash_loop_line("authtest_sleeper", failing)
    assert line.startswith("authtest_sleeper.1 failed 3 times: No such image: 172.20.0.2:5000/swarmml/tiny:1")
    assert line.endswith("then deploy with --with-registry-auth)")
    assert "login" not in crash_loop_line("s", [(1, 3, "task: non-zero exit (1)", "t1")])
