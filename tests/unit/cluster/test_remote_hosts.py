"""The pure part of `cluster create --ssh`: host specs, host check verdicts, the init/join plan, doctor's ports."""
import pytest

from swarmml.cluster import expose
from swarmml.cluster import hosts as rh
from swarmml.engine import endpoint

GOOD = """os_id=debian
os_name=Debian GNU/Linux 12 (bookworm)
kernel=6.1.0
uid=0
user=root
pkg=apt-get
bash=yes
cgroup=v2
overlay=yes
ipvs=yes
disk_path=/var/lib
disk_free_kb=40000000
ssh_connection=10.0.0.9 51000 10.0.0.2 22
time=1000.5
"""


def facts(text=GOOD, **replace):
    for k, v in replace.items():
        text = "\n".join(f"{k}={v}" if line.startswith(f"{k}=") else line for line in text.splitlines())
        if f"{k}=" not in text:
            text += f"\n{k}={v}"
    return rh.parse_facts(text, 1000.0, 1001.0)


def test_specs_default_to_root_and_port_22():
    assert rh.parse_spec("h1") == rh.HostSpec("root", "h1", 22)
    s = rh.parse_spec("ubuntu@10.0.0.3:2222")
    assert (s.user, s.host, s.port, s.name, s.url) == ("ubuntu", "10.0.0.3", 2222, "ubuntu@10.0.0.3:2222",
                                                      "ssh://ubuntu@10.0.0.3:2222")
    assert rh.parse_spec("root@h1").url == "ssh://root@h1"


@pytest.mark.parametrize("bad", ["", "a b", "root@", "h1:0", "h1:99999", "x;rm -rf /@h"])
def test_bad_specs_say_what_was_expected(bad):
    with pytest.raises(rh.SpecError, match=r"--ssh: expected \[USER@\]HOST\[:PORT\]"):
        rh.parse_spec(bad)


def test_a_host_given_twice_is_refused():
    with pytest.raises(rh.SpecError, match="given twice"):
        rh.parse_specs(["root@h1", "ubuntu@h1"])


def test_labels_are_keyed_by_host_and_checked():
    specs = rh.parse_specs(["root@h1", "ubuntu@h2"])
    assert rh.parse_labels(["h2:gpu=no", "ubuntu@h2:zone=a"], specs) == {"h2": {"gpu": "no", "zone": "a"}}
    with pytest.raises(rh.SpecError, match="not one of the --ssh hosts"):
        rh.parse_labels(["h3:gpu=no"], specs)
    with pytest.raises(rh.SpecError, match="HOST:KEY=VALUE"):
        rh.parse_labels(["gpu=no"], specs)
    with pytest.raises(rh.SpecError, match="swarmml's own"):
        rh.parse_labels(["h1:io.swarmml.cluster=x"], specs)


def test_facts_are_parsed_with_the_clock_offset_and_the_address_ssh_reached():
    f = facts()
    assert f.os_id == "debian" and f.uid == 0 and f.pkg == "apt-get" and f.ipvs and f.cgroup == "v2"
    assert f.free_gb == pytest.approx(40.0) and f.engine is None
    assert f.reached_at == "10.0.0.2" and f.offset_s == pytest.approx(0.0)
    assert rh.advertise_addr(f, None) == "10.0.0.2"
    assert rh.advertise_addr(facts(iface_addr="192.168.5.4"), "eth1") == "192.168.5.4"
    assert rh.advertise_addr(f, "eth1") is None  # the interface has no address


def test_a_good_host_passes_and_will_get_docker_io():
    found = rh.verdicts(facts())
    assert rh.failure(found) is None
    assert any(v.check == "engine" and "docker.io will be installed" in v.message for v in found)


@pytest.mark.parametrize("change, message", [
    ({"pkg": ""}, "no Docker engine answers and swarmml installs one only with apt-get (found no package manager)"),
    ({"pkg": "dnf"}, "(found only dnf); install Docker there first"),
    ({"uid": "1000", "user": "ubuntu"}, "user ubuntu is not root and `sudo -n` asks for a password"),
    ({"cgroup": ""}, "no cgroup filesystem"),
    ({"disk_free_kb": "1000000"}, "1.0 GB free under /var/lib; the engine and images need at least 5 GB"),
    ({"time": "1200.5"}, "clock +200.0 s from this machine's; run an NTP client"),
])
def test_each_failing_check_is_one_line(change, message):
    assert message in rh.failure(rh.verdicts(facts(**change)))


def test_an_engine_that_answers_needs_no_package_manager_and_sudo_is_enough():
    assert rh.failure(rh.verdicts(facts(pkg="", engine="24.0.7"))) is None
    assert rh.failure(rh.verdicts(facts(uid="1000", sudo="yes"))) is None


def test_a_small_clock_offset_warns():
    found = rh.verdicts(facts(time="1005.5"))
    assert rh.failure(found) is None and any(v.level == "warn" and v.check == "time" for v in found)


def inactive():
    return rh.SwarmState()


def test_fresh_hosts_init_on_the_first_and_join_with_their_roles():
    hosts = ["a", "b", "c", "d"]
    steps = rh.plan(hosts, {h: inactive() for h in hosts}, managers=3, ours=None)
    assert [(s.host, s.action, s.role) for s in steps] == [
        ("a", "init", "manager"), ("b", "join", "manager"), ("c", "join", "manager"), ("d", "join", "worker")]


def test_a_formed_swarm_is_kept_and_one_more_host_joins():
    states = {"a": rh.SwarmState("active", "C1", "n1", True), "b": rh.SwarmState("active", None, "n2", False),
              "c": inactive()}
    steps = rh.plan(["a", "b", "c"], states, managers=1, ours="C1", our_nodes={"n1", "n2"})
    assert [(s.action, s.role) for s in steps] == [("keep", "manager"), ("keep", "worker"), ("join", "worker")]
    assert [s.host for s in rh.changes(steps)] == ["c"]


def test_a_host_in_another_swarm_is_refused_unless_force():
    states = {"a": inactive(), "b": rh.SwarmState("active", None, "x9", False)}
    refused = rh.plan(["a", "b"], states, managers=1, ours=None)
    assert [s.action for s in refused] == ["init", "refuse"]
    assert "already in another swarm (state active); add --force" in refused[1].why
    assert [s.action for s in rh.plan(["a", "b"], states, 1, None, force=True)] == ["init", "leave-join"]
    # a worker of our own swarm is known by its node ID, not refused
    assert [s.action for s in rh.plan(["b"], {"b": states["b"]}, 1, "C1", {"x9"})] == ["keep"]


def test_when_the_first_host_failed_the_next_one_inits_and_failed_hosts_are_left_out():
    steps = rh.plan(["a", "b", "c"], {"b": inactive(), "c": inactive()}, managers=1, ours=None)
    assert [(s.host, s.action, s.role) for s in steps] == [("b", "init", "manager"), ("c", "join", "worker")]


def test_a_manager_of_another_swarm_with_force_leaves_and_inits():
    states = {"a": rh.SwarmState("active", "OTHER", "n1", True)}
    assert [s.action for s in rh.plan(["a"], states, 1, None, force=True)] == ["leave-init"]
    assert [s.action for s in rh.plan(["a"], states, 1, "C1", force=False)] == ["refuse"]


def test_port_targets_are_2377_to_managers_and_7946_to_all_others():
    peers = [("10.0.0.1", "manager"), ("10.0.0.2", "worker"), ("10.0.0.3", "worker")]
    assert rh.port_targets(peers, "10.0.0.2") == ["10.0.0.1:2377", "10.0.0.1:7946", "10.0.0.3:7946"]


def test_port_verdicts_name_what_is_closed():
    ok = rh.port_verdicts("tcp 10.0.0.1:2377 ok\ntcp 10.0.0.3:7946 ok\nudp 7946 ok\nudp 4789 no\n")
    assert ok[0].level == "ok" and "2 tcp checks" in ok[0].message and len(ok) == 2
    closed = rh.port_verdicts("tcp 10.0.0.1:2377 no\nudp 7946 no\nudp 4789 ok\n")
    assert closed[0].level == "fail" and "can't reach 10.0.0.1:2377 (tcp)" in closed[0].message
    assert closed[1].level == "warn" and "7946/udp" in closed[1].message


def test_doctor_says_whether_the_routing_mesh_works():
    assert [v.level for v in rh.host_verdicts(facts(engine="24.0.7")) if v.check == "routing"] == ["ok"]
    no_ipvs = [v for v in rh.host_verdicts(facts(engine="24.0.7", ipvs="no")) if v.check == "routing"]
    assert no_ipvs[0].level == "warn" and "the gateway is needed" in no_ipvs[0].message


def test_the_identity_block_is_its_own_and_comes_out_again():
    text = "Host other\n    User me\n"
    block = expose.identity_block("lab", ["10.0.0.1", "10.0.0.2"], "/k/id", "swarmml cluster destroy lab")
    assert "Host 10.0.0.1 10.0.0.2\n    IdentityFile /k/id\n" in block
    both = expose.with_block(text, "lab", block, "swarmml cluster destroy lab")
    assert both.startswith(block) and both.endswith(text)
    # a local cluster of the same name has a block of its own, which this one's removal keeps
    local = expose.ssh_config_block("lab", 2222, "/k/local")
    assert expose.without_block(local + both, "lab", "swarmml cluster destroy lab") == local + text


def test_a_context_keeps_swarmml_s_record_in_its_metadata(tmp_path):
    files = endpoint.context_files("swarmml-lab", "ssh://root@h1", "lab", metadata={"Swarmml": {"swarm_id": "C1"}})
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    assert endpoint.context_metadata(str(tmp_path), "swarmml-lab") == {"Swarmml": {"swarm_id": "C1"},
                                                                       "Description": "lab"}
    assert endpoint.read_context(str(tmp_path), "swarmml-lab").host == "ssh://root@h1"
    assert endpoint.context_metadata(str(tmp_path), "nothing") is None


def test_ssh_failures_are_one_line_without_the_host_twice():
    import paramiko

    from swarmml.cluster.ssh import explain_ssh
    spec = rh.parse_spec("root@10.0.0.5")
    assert explain_ssh(paramiko.AuthenticationException("Authentication failed."), spec) == (
        "SSH login was refused (Authentication failed.); check the user, the key (ssh-agent or IdentityFile)")
    refused = paramiko.ssh_exception.NoValidConnectionsError({("10.0.0.5", 22): ConnectionRefusedError()})
    assert explain_ssh(refused, spec) == ("nothing accepts SSH connections on port 22 (connection refused); "
                                          "is sshd running there?")
    unknown = paramiko.SSHException("Server '10.0.0.5' not found in known_hosts")
    assert explain_ssh(unknown, spec).startswith("its SSH host key is not in ~/.ssh/known_hosts; connect once with "
                                                 "`ssh root@10.0.0.5`")


def test_a_host_without_bash_can_not_run_the_bootstrap():
    assert "no bash to run swarmml's engine install" in rh.failure(rh.verdicts(facts(bash="no")))


def test_a_run_that_names_only_a_new_host_joins_it_to_the_recorded_swarm():
    # the recorded hosts come first (their roles are theirs); "a", the manager, was not given this time
    steps = rh.plan(["a", "b", "d"], {"d": inactive()}, managers=1, ours="C1", manager_elsewhere=True)
    assert [(s.action, s.role) for s in steps] == [("join", "worker")]
