"""`swarmml cluster create --ssh` from bare machines to the ML stack, and back with `cluster destroy`.

The machines are containers that run only sshd (tests/helpers/ssh_hosts.py), on a bridge network of the
module's own: no engine until `cluster create` installs Debian's docker.io into them over SSH.
They log in with a key of the module's (--identity) and their host keys are in a known_hosts of the
session's HOME (conftest's session_home), so the machine's ~/.ssh is not touched. The ML stack's
images come from a registry on the same network, as `registry:5000` (the hosts' daemon.json trusts
it plainly, as a user's own registry would be set up).

The tests run in this order, each on what the one before left: create, create again (nothing
changes), deploy and scale, doctor, one more host, the failures, --force, destroy.
"""
import json
import os
import subprocess
import time

import pytest
import ssh_hosts
from stack_helpers import STACK_FILE, one_line_error, swarmml, wait_answering

from swarmml.build import predictor as build
from swarmml.cluster import certs, images
from swarmml.ops import services
from swarmml.cluster import registry as registries
from swarmml.engine import connect
from swarmml.engine import containers

pytestmark = pytest.mark.integration
STACK, PORT = "it-ssh-ml", 8097
CLEARED = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS", "SWARMML_CLUSTER",
           "SWARMML_HOST", "SWARMML_CONTEXT")
DAEMON_JSON = json.dumps({"insecure-registries": [f"registry:{registries.PORT}"]}).encode()


@pytest.fixture(scope="module")
def lab(host_engine, session_home):
    started = time.monotonic()
    ssh_hosts.remove_all(host_engine)  # what a run that was killed left
    ref = ssh_hosts.image(host_engine)
    net = ssh_hosts.network(host_engine)
    key, wrong = certs.make_ssh_key("it-ssh"), certs.make_ssh_key("it-ssh wrong")
    keys = {}
    for kind, k in (("key", key), ("wrong", wrong)):
        keys[kind] = session_home / f"it-ssh-{kind}"
        keys[kind].write_bytes(k.private)
        keys[kind].chmod(0o600)
    addrs, known = {}, ""
    for name in ("h1", "h2", "h3", "h4", "bare", "nossh"):
        addrs[name], public = ssh_hosts.start_host(host_engine, ref, net, name, key.public, sshd=name != "nossh",
                                                   files={"/etc/docker/daemon.json": DAEMON_JSON})
        known += ssh_hosts.known_hosts_line(addrs[name], public)
    # A machine with no package manager at all (and no engine): nothing swarmml can install with.
    for tool in ("apt-get", "apt", "dpkg"):
        containers.exec_in(host_engine, f"{ssh_hosts.PREFIX}-bare", ["rm", "-f", f"/usr/bin/{tool}"])
    (session_home / ".ssh").mkdir(mode=0o700, exist_ok=True)
    with open(session_home / ".ssh" / "known_hosts", "a") as f:
        f.write(known)

    chosen = images.image_set(host_engine, "local")
    containers.ensure_volume(host_engine, f"{ssh_hosts.PREFIX}-registry", ssh_hosts.PREFIX,
                             "registry")  # labelled: removed
    reg = containers.run_registry(host_engine, cluster=ssh_hosts.PREFIX, container_name=f"{ssh_hosts.PREFIX}-registry",
                                  image=chosen.registry, network=net, volume=f"{ssh_hosts.PREFIX}-registry",
                                  data_path=chosen.registry_data)
    push = f"127.0.0.1:{containers.published_port(host_engine, reg)}"
    built = build.build().built
    pulled = build.push_images(host_engine, built, registries.Target(push, f"registry:{registries.PORT}", push))
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    print(f"\nssh lab: hosts and images ready in {time.monotonic() - started:.1f} s")
    yield {"addrs": addrs, "keys": keys, "env": env, "images": pulled,
           "ssh": lambda *names: [a for n in names for a in ("--ssh", f"root@{addrs[n]}")]}
    if os.environ.get("SWARMML_KEEP_SSH_LAB") == "1":  # to look at the hosts after a failure
        return
    swarmml("--context", "swarmml-lab", "rm", STACK, env=env)
    swarmml("cluster", "destroy", "lab", env=env)
    swarmml("cluster", "destroy", "other", env=env)
    ssh_hosts.remove_all(host_engine)


def create(lab, *args):
    return swarmml("cluster", "create", *args, "--identity", str(lab["keys"]["key"]), "-o", "json", env=lab["env"])


def engine_of(lab, name):
    return connect(f"ssh://root@{lab['addrs'][name]}", timeout=60)


def test_create_forms_a_3_node_swarm_from_bare_hosts(lab, host_engine):
    for name in ("h1", "h2", "h3"):
        code, _ = containers.exec_in(host_engine, f"{ssh_hosts.PREFIX}-{name}", ["sh", "-c", "command -v dockerd"])
        assert code != 0, f"{name} has an engine before the test"
    started = time.monotonic()
    done = create(lab, "lab", *lab["ssh"]("h1", "h2", "h3"), "--managers", "1",
                  "--label", f"{lab['addrs']['h2']}:gpu=no")
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["changed"] and result["context"] == "swarmml-lab"
    assert [(h["role"], h["action"], h["installed"]) for h in result["hosts"]] == [
        ("manager", "installed, init", True), ("worker", "installed, join", True), ("worker", "installed, join", True)]
    manager = engine_of(lab, "h1")
    nodes = manager.api.nodes()
    assert sorted(n["Status"]["State"] for n in nodes) == ["ready"] * 3
    assert sorted(n["Spec"]["Role"] for n in nodes) == ["manager", "worker", "worker"]
    by_addr = {n["Status"]["Addr"]: n["Spec"].get("Labels") or {} for n in nodes}
    assert by_addr[lab["addrs"]["h2"]] == {"io.swarmml.cluster": "lab", "gpu": "no"}
    assert by_addr[lab["addrs"]["h1"]] == {"io.swarmml.cluster": "lab"}
    print(f"\nssh lab: 3 bare hosts to a 3-node swarm in {took:.1f} s")


def test_the_join_tokens_are_on_no_host_command_line_or_log(lab, host_engine):
    tokens = engine_of(lab, "h1").swarm.attrs["JoinTokens"].values()
    for name in ("h1", "h2", "h3"):
        # read here, not grepped there: a grep would carry the token on its own command line
        _, out = containers.exec_in(host_engine, f"{ssh_hosts.PREFIX}-{name}",
                                    ["sh", "-c", "cat /proc/[0-9]*/cmdline /var/log/swarmml-dockerd.log 2>/dev/null"])
        assert not any(t in out for t in tokens), f"a join token is on {name}"


def test_a_second_create_changes_nothing(lab):
    done = swarmml("cluster", "create", "lab", *lab["ssh"]("h1", "h2", "h3"), "--managers", "1", env=lab["env"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "nothing changed" in " ".join(done.stderr.split()), done.stderr
    assert done.stdout.count("keep") == 3, done.stdout


def test_the_ml_stack_deploys_and_scales_to_all_three(lab):
    env = dict(lab["env"], GATEWAY_PORT=str(PORT))
    started = time.monotonic()
    done = swarmml("--context", "swarmml-lab", "deploy", STACK_FILE, "--name", STACK, "--timeout", "300", "-o", "json",
                   env=env)
    assert done.returncode == 0, done.stderr[-6000:]
    assert json.loads(done.stdout)["converged"], done.stdout
    deployed = time.monotonic() - started
    scaled = swarmml("--context", "swarmml-lab", "scale", "predictor", "6", "--stack", STACK, "-o", "json", env=env)
    assert scaled.returncode == 0, scaled.stderr[-2000:]
    result = json.loads(scaled.stdout)
    assert result["ok"], scaled.stdout
    per_node = result["placement"][0]["per_node"]
    assert len(per_node) == 3 and sum(per_node.values()) == 6, per_node
    wait_answering(services.url(engine_of(lab, "h1"), "gateway", STACK), replicas=3)
    print(f"\nssh lab: deploy {deployed:.1f} s (3 pulls), scale to 6 {result['duration_s']} s, per node {per_node}")


def test_doctor_checks_each_host_over_ssh(lab):
    done = swarmml("doctor", "--cluster", "lab", "-o", "json", env=lab["env"])
    assert done.returncode == 0, done.stdout[-3000:]
    found = json.loads(done.stdout)["findings"]
    for name in ("h1", "h2", "h3"):
        mine = [f for f in found if f["message"].startswith(f"root@{lab['addrs'][name]}: ")]
        checks = {f["check"] for f in mine}
        assert {"engine", "disk", "routing", "ports"} <= checks, mine
        assert any(f["check"] == "ports" and f["level"] == "ok" and "tcp checks" in f["message"] for f in mine), mine


def test_one_more_ssh_adds_that_host(lab):
    done = create(lab, "lab", *lab["ssh"]("h1", "h2", "h3", "h4"))
    assert done.returncode == 0, done.stderr[-2000:]
    actions = [h["action"] for h in json.loads(done.stdout)["hosts"]]
    assert actions == ["keep", "keep", "keep", "installed, join"], actions
    assert len(engine_of(lab, "h1").api.nodes(filters={"role": "worker"})) == 3


def test_a_wrong_key_is_one_line(lab):
    done = swarmml("cluster", "create", "bad", *lab["ssh"]("h1"), "--identity", str(lab["keys"]["wrong"]),
                   env=lab["env"])
    one_line_error(done, f"root@{lab['addrs']['h1']}: SSH login was refused", "check the user, the key")
    assert "cluster bad" not in (lab_home(lab) / ".ssh" / "config").read_text()


def lab_home(lab):
    import pathlib
    return pathlib.Path(lab["env"]["HOME"])


def test_a_host_that_refuses_ssh_is_one_line(lab):
    done = create(lab, "bad", *lab["ssh"]("nossh"))
    one_line_error(done, f"root@{lab['addrs']['nossh']}: nothing accepts SSH connections on port 22")


def test_a_host_without_a_package_manager_is_one_line(lab):
    done = create(lab, "bad", *lab["ssh"]("bare"))
    one_line_error(done, f"root@{lab['addrs']['bare']}: no Docker engine answers",
                   "found no package manager", "install Docker there first")


def test_a_host_in_another_swarm_is_refused_unless_force_and_destroy_can_remove_the_engine(lab, host_engine):
    done = create(lab, "other", *lab["ssh"]("h4"))
    one_line_error(done, f"root@{lab['addrs']['h4']}: this host is already in another swarm", "add --force")
    forced = create(lab, "other", *lab["ssh"]("h4"), "--force")
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert [h["action"] for h in json.loads(forced.stdout)["hosts"]] == ["leave-init"]
    assert len(engine_of(lab, "h4").api.nodes()) == 1
    # h4's engine was installed by `create` (of lab): --remove-engine stops and purges it
    gone = swarmml("cluster", "destroy", "other", "--remove-engine", "-o", "json", env=lab["env"])
    assert gone.returncode == 0, gone.stderr[-2000:]
    assert [h["action"] for h in json.loads(gone.stdout)["hosts"]] == ["left, engine removed"]
    code, _ = containers.exec_in(host_engine, f"{ssh_hosts.PREFIX}-h4",
                                 ["sh", "-c", "command -v dockerd || pgrep -x dockerd"])
    assert code != 0, "h4 still has an engine"


def test_destroy_leaves_hosts_in_no_swarm_with_their_engines(lab, host_engine):
    swarmml("--context", "swarmml-lab", "rm", STACK, env=lab["env"])
    done = swarmml("cluster", "destroy", "lab", "-o", "json", env=lab["env"])
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["context_removed"]
    # h4 left for `other`, whose destroy removed its engine
    assert [h["action"] for h in result["hosts"]] == ["left"] * 3 + ["has no engine (in no swarm)"], result
    for name in ("h1", "h2", "h3"):  # asked of each host's engine directly: the context is gone
        _, out = containers.exec_in(host_engine, f"{ssh_hosts.PREFIX}-{name}",
                                    ["docker", "info", "--format", "{{.Swarm.LocalNodeState}} {{.ServerVersion}}"])
        assert out.split()[0] == "inactive" and out.split()[1], (name, out)
    listed = subprocess.run(["docker", "context", "ls", "--format", "{{.Name}}"], capture_output=True, text=True,
                            env=lab["env"])
    assert "swarmml-lab" not in listed.stdout
    assert "swarmml cluster lab" not in (lab_home(lab) / ".ssh" / "config").read_text()
