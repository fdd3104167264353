"""Which nodes may run a service: placement constraints and platforms read as Swarm reads them. Pure."""
import pytest

from swarmml.ops import placement


def node(i, state="ready", availability="active", addr=None):
    return {"ID": f"node{i}id", "Description": {"Hostname": f"node{i}"},
            "Status": {"State": state, "Addr": addr or f"172.30.0.{i + 1}"},
            "Spec": {"Availability": availability, "Role": "worker"}}


def labelled(i, role="worker", labels=None, engine_labels=None, arch="x86_64", **kw):
    n = node(i, **kw)
    n["Spec"].update(Role=role, Labels=labels or {})
    n["Description"].update(Platform={"OS": "linux", "Architecture": arch}, Engine={"Labels": engine_labels})
    return n


@pytest.mark.parametrize("constraint,expected", [
    ("node.role == manager", [1]), ("node.role==worker", [2, 3, 4]), ("node.role != manager", [2, 3, 4]),
    ("node.hostname == NODE2", [2]), ("node.id == node3id", [3]),
    ("node.labels.zone == eu", [2, 3]), ("node.labels.zone != eu", [1, 4]), ("node.labels.Zone == eu", []),
    ("engine.labels.ssd == true", [4]), ("node.platform.os == linux", [1, 2, 3, 4]),
    ("node.platform.arch == aarch64", [3]), ("node.ip == 172.30.0.0/24", [1, 2, 3, 4]),
    ("node.ip != 172.30.0.3", [1, 3, 4]), ("node.ip == not-an-address", []), ("node.colour == red", []),
    ("something.swarm.does.not.know == 1", []),  # Swarm places nothing for an unknown attribute
])
def test_constraints_read_like_swarm_reads_them(constraint, expected):
    nodes = [labelled(1, role="manager"), labelled(2, labels={"zone": "eu"}),
             labelled(3, labels={"zone": "EU"}, arch="aarch64"), labelled(4, engine_labels={"ssd": "true"})]
    spec = {"TaskTemplate": {"Placement": {"Constraints": [constraint]}}}
    assert [int(n["ID"][4]) for n in placement.eligible_nodes(spec, nodes)] == expected


def test_eligible_nodes_are_ready_active_and_fit_the_image_platforms():
    nodes = [labelled(1), labelled(2, state="down"), labelled(3, availability="drain"),
             labelled(4, availability="pause"), labelled(5, arch="aarch64")]
    spec = {"TaskTemplate": {"Placement": {"Platforms": [{"Architecture": "amd64", "OS": "linux"}]}}}
    assert [n["ID"] for n in placement.eligible_nodes(spec, nodes)] == ["node1id"]
    multi = {"TaskTemplate": {"Placement": {"Platforms": [{"Architecture": "amd64", "OS": "linux"},
                                                          {"Architecture": "", "OS": "linux"}]}}}
    assert [n["ID"] for n in placement.eligible_nodes(multi, nodes)] == ["node1id", "node5id"]


@pytest.mark.parametrize("desired,state,running", [
    ("running", "running", True),
    ("shutdown", "running", False),  # Swarm is stopping it: it no longer counts
    ("running", "starting", False),
    ("ready", "running", False),
])
def test_a_running_task_is_one_running_and_meant_to(desired, state, running):
    assert placement.is_running({"DesiredState": desired, "Status": {"State": state}}) is running
