"""verify's placement, answer and golden checks: pure, over engine-shaped plain data."""
import json

from swarmml.ops.placement import Placement
from swarmml.verify import checks


def node(host, role="worker", state="ready", availability="active", labels=None, arch="x86_64", cpus=2e9):
    return {"ID": f"id-{host}", "Description": {"Hostname": host, "Platform": {"OS": "linux", "Architecture": arch},
                                                "Resources": {"NanoCPUs": int(cpus), "MemoryBytes": 4 << 30},
                                                "Engine": {"Labels": {}}},
            "Spec": {"Role": role, "Availability": availability, "Labels": labels or {}},
            "Status": {"State": state, "Addr": "10.0.0.1"}}


THREE = [node("node1", role="manager"), node("node2"), node("node3")]
AMD64 = {"Platforms": [{"OS": "linux", "Architecture": "amd64"}]}


def test_even_spread_passes_and_names_the_nodes():
    c = checks.placement_check(Placement("p", 6, 6, {"node1": 2, "node2": 2, "node3": 2}), THREE, AMD64)
    assert c.ok and c.detail == "6 replicas on 3 nodes: node1:2, node2:2, node3:2"
    assert c.data["eligible_nodes"] == ["node1", "node2", "node3"] and c.data["excluded_nodes"] == {}
    # fewer replicas than nodes: one each on distinct nodes
    assert checks.placement_check(Placement("p", 2, 2, {"node1": 1, "node3": 1}), THREE).ok
    assert checks.placement_check(Placement("p", 10, 10, {"node1": 4, "node2": 3, "node3": 3}), THREE).ok


def test_uneven_spread_after_a_node_returned_suggests_rebalance():
    c = checks.placement_check(Placement("p", 6, 6, {"node1": 3, "node3": 3}), THREE)
    assert not c.ok
    assert ("replicas on 2 nodes, 3 possible" in c.detail
            and "node1:3, node2:0, node3:3 differ by more than one" in c.detail)
    assert "swarmml rebalance" in c.detail


def test_constraints_explain_why_replicas_cannot_spread():
    spec = {"Constraints": ["node.role==worker"], **AMD64}
    ok = checks.placement_check(Placement("p", 4, 4, {"node2": 2, "node3": 2}), THREE, spec)
    # spread over the two eligible nodes is all there is: it passes, and says why node1 is out
    assert ok.ok and "not eligible: node1 (constraint node.role==worker excludes it)" in ok.detail
    labelled = [node("node1", labels={"zone": "a"}), node("node2", labels={"zone": "A"}), node("node3")]
    c = checks.placement_check(Placement("p", 3, 2, {"node1": 1, "node2": 1},
                                                pending=["p.3 pending on -: no suitable node"]),
                               labelled, {"Constraints": ["node.labels.zone==a"]})
    assert not c.ok and "2 of 3 replicas running" in c.detail
    assert "node3 (constraint node.labels.zone==a excludes it)" in c.detail  # values match ignoring case: node2 fits
    assert "no suitable node" in c.detail


def test_node_state_availability_platform_and_reservations_exclude_nodes():
    nodes = [node("node1", state="down"), node("node2", availability="drain"), node("node3", arch="aarch64"),
             node("node4", cpus=1e9), node("node5")]
    why = checks.node_exclusions(nodes, AMD64, {"NanoCPUs": int(1.5e9)})
    assert why == {"node1": "node is down", "node2": "availability is drain",
                   "node3": "the image has no linux/aarch64 variant",
                   "node4": "a replica reserves 1.5 CPU, the node has 1"}


def test_max_replicas_per_node_and_label_spread_are_named():
    spec = {"MaxReplicas": 1, **AMD64}
    c = checks.placement_check(Placement("p", 4, 3, {"node1": 1, "node2": 1, "node3": 1}), THREE, spec)
    assert not c.ok and "max_replicas_per_node 1 x 3 eligible nodes = 3 < 4" in c.detail
    prefs = {"Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}]}
    c = checks.placement_check(Placement("p", 4, 4, {"node1": 2, "node2": 2}), THREE, prefs)
    assert not c.ok and "spread over node.labels.zone" in c.detail


def test_answer_check_names_missing_and_stale_replicas():
    assert checks.answer_check({"aaaaaaaaaaaa", "bbbbbbbbbbbb"}, ["aaaaaaaaaaaa1234", "bbbbbbbbbbbb5678"]).ok
    miss = checks.answer_check({"aaaaaaaaaaaa", "cccccccccccc"}, ["aaaaaaaaaaaa1234", "bbbbbbbbbbbb5678"])
    assert not miss.ok and "1 of 2 replicas never answered: bbbbbbbbbbbb" in miss.detail
    assert "not running any more: cccccccccccc" in miss.detail
    assert not checks.answer_check(set(), []).ok


def test_golden_check_compares_every_replica():
    same = json.dumps({"outputs": [{"name": "predict", "data": [0, 1]}, {"name": "predict_proba", "data": [1.0]}]})
    reordered = json.dumps({"outputs": [{"name": "predict_proba", "data": [1.0]}, {"name": "predict", "data": [0, 1]}]})
    other = json.dumps({"outputs": [{"name": "predict", "data": [0, 2]}]})
    assert checks.golden_check({"a": same.encode(), "b": reordered.encode()}, ["a", "b"]).ok
    bad = checks.golden_check({"a": same, "b": other, "c": same}, ["a", "b", "c"])
    assert not bad.ok and "2 different answers (a, c; b)" in bad.detail
    assert "1 of 2" in checks.golden_check({"a": same}, ["a", "b"]).detail
    assert not checks.golden_check({"a": b"<html>", "b": b"<html>"}, ["a", "b"]).ok
    # a replica of the previous spec, still draining behind the gateway, is neither counted nor compared
    drained = checks.golden_check({"a": same, "b": same, "old": other}, ["a", "b"])
    assert drained.ok and drained.data == {"replicas": 2, "distinct_answers": 1}
    assert checks.golden_check({}, ["a"]).detail == "no golden answer came back"
