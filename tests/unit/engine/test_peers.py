"""The other managers of a remote swarm: their URLs from a node list, and the file that remembers them."""
import json

import pytest

from swarmml.engine import peers


def node(addr, leader=False, manager=True, status_addr=None):
    n = {"Status": {"Addr": status_addr or addr.split(":")[0]}}
    if manager:
        n["ManagerStatus"] = {"Addr": addr, "Leader": leader, "Reachability": "reachable"}
    return n


NODES = [node("10.0.0.3:2377"), node("10.0.0.2:2377", leader=True), node("10.0.0.9:2377", manager=False),
         node("10.0.0.4:2377")]


def test_manager_hosts_leader_first_workers_left_out():
    assert peers.manager_hosts(NODES) == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
    assert peers.manager_hosts([node("[fd00::5]:2377")]) == ["fd00::5"]
    assert peers.manager_hosts([]) == []


@pytest.mark.parametrize("base, tls, want", [
    # the given host is one of the managers: the same port on the others
    ("tcp://10.0.0.2:2376", True, ["tcp://10.0.0.3:2376", "tcp://10.0.0.4:2376"]),
    ("tcp://10.0.0.2:12376", True, ["tcp://10.0.0.3:12376", "tcp://10.0.0.4:12376"]),
    # a published port or a proxy in front of one manager: the engines' usual TLS port
    ("tcp://127.0.0.1:32771", True, ["tcp://10.0.0.2:2376", "tcp://10.0.0.3:2376", "tcp://10.0.0.4:2376"]),
    ("tcp://127.0.0.1:32771", False, ["tcp://10.0.0.2:2375", "tcp://10.0.0.3:2375", "tcp://10.0.0.4:2375"]),
    ("ssh://ops@10.0.0.3", False, ["ssh://ops@10.0.0.2", "ssh://ops@10.0.0.4"]),
    ("ssh://ops@10.0.0.3:2222", False, ["ssh://ops@10.0.0.2:2222", "ssh://ops@10.0.0.4:2222"]),
    ("ssh://swarm-1", False, ["ssh://10.0.0.2", "ssh://10.0.0.3", "ssh://10.0.0.4"]),
    ("unix:///var/run/docker.sock", False, []),
])
def test_peer_urls_keep_the_scheme_user_and_setup(base, tls, want):
    assert peers.peer_urls(base, ["10.0.0.2", "10.0.0.3", "10.0.0.4"], tls) == want


def test_ipv6_managers_are_bracketed():
    assert peers.peer_urls("tcp://[fd00::2]:2376", ["fd00::2", "fd00::3"], True) == ["tcp://[fd00::3]:2376"]


def test_the_cache_remembers_per_url_and_survives_a_bad_file(tmp_path):
    path = str(tmp_path / "swarmml" / "managers.json")
    assert peers.load("tcp://a:2376", path) == []
    peers.save("tcp://a:2376", ["tcp://b:2376"], path)
    peers.save("ssh://ops@a", ["ssh://ops@b"], path)
    assert peers.load("tcp://a:2376", path) == ["tcp://b:2376"]
    assert json.loads(open(path).read()) == {"ssh://ops@a": ["ssh://ops@b"], "tcp://a:2376": ["tcp://b:2376"]}
    open(path, "w").write("{not json")
    assert peers.load("tcp://a:2376", path) == []
    peers.save("tcp://a:2376", ["tcp://c:2376"], path)  # a broken cache is replaced, not an error
    assert peers.load("tcp://a:2376", path) == ["tcp://c:2376"]


def test_an_unwritable_cache_is_no_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    peers.save("tcp://a:2376", ["tcp://b:2376"], str(blocker / "managers.json"))
    assert peers.load("tcp://a:2376", str(blocker / "managers.json")) == []


def test_cache_path_follows_xdg(tmp_path):
    assert peers.cache_path({"XDG_CACHE_HOME": str(tmp_path)}) == str(tmp_path / "swarmml" / "managers.json")
