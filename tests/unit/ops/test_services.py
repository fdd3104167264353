"""Finding services by the names people use, relative to their stack, and where their ports answer. No daemon."""
import pytest

from swarmml.ops import services
from swarmml.cli import cli
from swarmml.engine import nodes as engine_nodes
from swarmml.engine import services as engine_services
from swarmml.errors import NotFound, UsageError


def _named(name, ns=None):
    return {"ID": name, "Spec": {"Name": f"{ns}_{name}" if ns else name,
                                 "Labels": {"com.docker.stack.namespace": ns} if ns else {}}}


def test_service_names_are_relative_to_their_stack():
    found = [_named("predictor", "ml"), _named("gateway", "ml"), _named("predictor", "canary"), _named("solo")]
    assert services.match(found, "gateway")["Spec"]["Name"] == "ml_gateway"
    assert services.match(found, "ml_predictor")["Spec"]["Name"] == "ml_predictor"
    assert services.match(found, "predictor", stack="canary")["Spec"]["Name"] == "canary_predictor"
    assert services.match(found, "solo")["ID"] == "solo"
    with pytest.raises(UsageError, match="in several stacks \\(canary, ml\\); add --stack"):
        services.match(found, "predictor")
    with pytest.raises(NotFound, match="no service 'nope' in stack 'ml' \\(services: ml_gateway, ml_predictor\\)"):
        services.match(found, "nope", stack="ml")
    assert [s["Spec"]["Name"] for s in services.of_stack(found, "ml")] == ["ml_gateway", "ml_predictor"]
    with pytest.raises(NotFound, match="no stack named 'nostack'"):
        services.of_stack(found, "nostack")


def test_an_unknown_service_is_bad_input_in_one_line(monkeypatch, capsys):
    # The CLI answers a name that matches no service with exit 2 and one line, before changing anything.
    monkeypatch.setattr("swarmml.cli.ops_cmds.target_client", lambda: None)
    monkeypatch.setattr(engine_services, "services", lambda client, *a, **k: [_named("predictor", "ml")])
    monkeypatch.setattr(engine_nodes, "nodes", lambda client, *a, **k: [])
    with pytest.raises(SystemExit) as done:
        cli.main(["scale", "nope", "3"], prog_name="swarmml")
    assert done.value.code == 2
    assert capsys.readouterr().err == ("swarmml: error: no service 'nope' (services: ml_predictor)\n")


def node(i, state="ready"):
    return {"ID": f"node{i}id", "Status": {"State": state, "Addr": f"172.30.0.{i + 1}"}}


def task(slot, node_id, state="running"):
    return {"ID": f"t{slot}", "Slot": slot, "NodeID": node_id, "DesiredState": "running", "Status": {"State": state}}


def _published(mode, port=8080):
    return {"ID": "g", "Spec": {"Name": "ml_gateway", "EndpointSpec": {"Ports": [
        {"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": port, "PublishMode": mode}]}},
        "Endpoint": {"Ports": [{"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": port, "PublishMode": mode}]}}


def test_url_of_a_host_mode_port_is_a_node_running_a_task():
    nodes = [node(1), node(2, state="down"), node(3)]
    tasks = [task(1, "node2id"), task(2, "node3id"), task(3, "node1id", state="starting")]
    # node2 is down (its task is stale) and node1's task is not running yet: only node3 answers.
    assert services.url_for(_published("host", 8091), tasks, nodes) == "http://172.30.0.4:8091"
    with pytest.raises(NotFound, match="no running task"):
        services.url_for(_published("host"), tasks[2:], nodes)


def test_url_of_an_ingress_port_is_any_ready_node():
    assert services.url_for(_published("ingress"), [], [node(2, state="down"), node(3)]) == "http://172.30.0.4:8080"


def test_short_names_and_stacks_come_from_the_namespace_label():
    assert (services.short_name(_named("predictor", "ml")), services.stack_of(_named("predictor", "ml"))) == \
        ("predictor", "ml")
    assert (services.short_name(_named("solo")), services.stack_of(_named("solo"))) == ("solo", None)
    # A name that doesn't start with its stack's prefix is kept whole.
    odd = {"Spec": {"Name": "other_api", "Labels": {"com.docker.stack.namespace": "ml"}}}
    assert services.short_name(odd) == "other_api"


def _vip(stack="ml", vip="172.25.255.29/16", port="8080"):
    return {"Spec": {"Name": f"{stack}_vip", "Labels": {"com.docker.stack.namespace": stack},
                     "TaskTemplate": {"ContainerSpec": {"Env": [f"SWARMML_VIP={vip}", f"SWARMML_VIP_CHECK_PORT={port}",
                                                                "SWARMML_VIP_ROUTER_ID=245"]}}}}


def test_a_host_mode_port_behind_a_floating_ip_is_reached_there_whichever_node_runs_a_task():
    gw = _published("host", 8080)
    gw["Spec"]["Labels"] = {"com.docker.stack.namespace": "ml"}
    assert services.floating_ip(gw, [gw, _vip()]) == "172.25.255.29"
    assert services.url_for(gw, [], [node(1)], vip="172.25.255.29") == "http://172.25.255.29:8080"
    # Not this stack's, not this port's, or no address set: the node's own address, as before.
    assert services.floating_ip(gw, [gw, _vip(stack="other")]) is None
    assert services.floating_ip(gw, [gw, _vip(port="8081")]) is None
    assert services.floating_ip(gw, [gw, _vip(vip="")]) is None
