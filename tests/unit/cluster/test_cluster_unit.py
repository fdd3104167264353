"""Cluster naming, validation, status rows and doctor findings: pure, no daemon."""
import pytest

from swarmml.cluster import local as cluster, doctor, images
from swarmml.errors import SwarmmlError, UsageError


@pytest.mark.parametrize("nodes", [0, -1, 10, "3", True, 2.5])
def test_bad_node_counts_are_usage_errors(nodes):
    with pytest.raises(UsageError, match="--nodes"):
        cluster.validate("local", nodes, 1)


def test_managers_cannot_exceed_nodes():
    with pytest.raises(UsageError, match="--managers"):
        cluster.validate("local", 2, 3)


@pytest.mark.parametrize("name", ["", "Local", "a_b", "-x", "x" * 40, "a/b"])
def test_bad_cluster_names(name):
    with pytest.raises(UsageError, match="--name"):
        cluster.validate(name, 3, 1)


def test_node_index_accepts_short_and_container_names():
    assert cluster.node_index("local", "node2") == 2
    assert cluster.node_index("local", "2") == 2
    assert cluster.node_index("local", "swarmml-local-node3") == 3
    with pytest.raises(UsageError):
        cluster.node_index("local", "swarmml-other-node3")


def test_summarize_counts_tasks_per_node_and_marks_the_leader():
    nodes = [
        {"id": "b", "hostname": "node2", "role": "worker", "availability": "active", "state": "ready",
         "addr": "10.0.0.3", "engine": "20.10", "leader": False},
        {"id": "a", "hostname": "node1", "role": "manager", "availability": "active", "state": "ready",
         "addr": "10.0.0.2", "engine": "20.10", "leader": True},
    ]
    tasks = [{"node": "a", "service": "s"}, {"node": "b", "service": "s"}, {"node": "b", "service": "t"}]
    rows = cluster.summarize(nodes, tasks, {"node1": "running"})
    assert [r["node"] for r in rows] == ["node1", "node2"]
    assert rows[0]["role"] == "manager (leader)" and rows[0]["tasks"] == 1
    assert rows[1]["tasks"] == 2 and rows[1]["container"] == "-"


def test_image_mode_resolution():
    assert images.resolve_mode("auto", True) == "public"
    assert images.resolve_mode("auto", False) == "local"
    assert images.resolve_mode("local", True) == "local"
    assert images.resolve_mode("public", False) == "public"
    with pytest.raises(UsageError):
        images.resolve_mode("cloud", True)


def _facts(**over):
    facts = {
        "engine": {"server_version": "20.10.24+dfsg1", "api_version": "1.41", "swarm_state": "active",
                   "swarm_control": True, "swarm_nodes": 3, "docker_root": "/var/lib/docker", "name": "n"},
        "ipvs": False, "free_gb": 50.0, "disk_path": "/var/lib/docker",
        "registry": {"cluster": "local", "url": "http://127.0.0.1:5000/v2/", "reachable": True},
    }
    facts.update(over)
    return facts


def test_doctor_without_ipvs_says_to_use_dnsrr():
    found = {f.check: f for f in doctor.findings(_facts())}
    assert found["routing"].level == "warn" and "dnsrr" in found["routing"].message
    assert found["engine"].level == "ok" and found["swarm"].level == "ok"


def test_doctor_with_ipvs_allows_the_mesh():
    found = {f.check: f for f in doctor.findings(_facts(ipvs=True))}
    assert found["routing"].level == "ok" and "routing mesh" in found["routing"].message


def test_doctor_flags_missing_engine_low_disk_and_dead_registry():
    found = {f.check: f for f in doctor.findings(_facts(
        engine=None, engine_error="refused", free_gb=1.0,
        registry={"cluster": "local", "url": None, "reachable": False}))}
    assert found["engine"].level == "fail" and "engine-up.sh" in found["engine"].message
    assert found["disk"].level == "fail"
    assert found["registry"].level == "fail" and "cluster up --name local" in found["registry"].message
    assert "swarm" not in found


def test_doctor_old_engine_and_inactive_swarm_are_warnings():
    eng = dict(_facts()["engine"], server_version="19.03.1", swarm_state="inactive", swarm_control=False)
    found = {f.check: f for f in doctor.findings(_facts(engine=eng))}
    assert found["engine"].level == "warn"
    assert found["swarm"].level == "warn" and "cluster up" in found["swarm"].message


def test_three_managers_by_default_from_three_nodes():
    from swarmml.cluster.local import default_managers
    assert [default_managers(n) for n in (1, 2, 3, 5)] == [1, 1, 3, 3]


def test_each_stack_gets_its_own_floating_ip_and_router_id_at_the_top_of_the_subnet():
    import ipaddress

    from swarmml.cluster.vip import vip_for
    a, b = vip_for("172.25.0.0/16", "ml"), vip_for("172.25.0.0/16", "it-ops")
    assert a == vip_for("172.25.0.0/16", "ml") and a != b and a[1] != b[1]
    for address, router_id in (a, b):
        ip = ipaddress.ip_interface(address)
        assert ip.network == ipaddress.ip_network("172.25.0.0/16") and ip.ip > ipaddress.ip_address("172.25.254.0")
        assert 1 <= router_id <= 255
    with pytest.raises(SwarmmlError, match="too small for a virtual IP"):
        vip_for("10.0.0.0/29", "ml")


@pytest.mark.parametrize("managers, level, says", [
    (1, "warn", "1 manager: if it is lost, nothing is scheduled"),
    (2, "warn", "2 managers survive no more losses than 1 (0), and need 2 for a quorum"),
    (3, "ok", "3 managers: the swarm survives the loss of 1"),
    (4, "warn", "4 managers survive no more losses than 3 (1), and need 3"),
    (5, "ok", "5 managers: the swarm survives the loss of 2"),
])
def test_doctor_says_how_many_losses_the_managers_survive(managers, level, says):
    f = doctor.quorum_finding(managers)
    assert f.level == level and f.message.startswith(says)
