"""The rollout reader on the real cluster: the two redeploys that the old readers got wrong (issue 10, §1).

- A constraint every node meets: Swarm keeps the running tasks, and the deploy must say done at once
  (it used to wait for tasks to move that never would, and time out).
- A change of networks alone: Swarm replaces every task, and the deploy must wait for that (it used to
  report done before any task had moved).
"""
import textwrap

import pytest
import tiny_image

from swarmml.ops import deploy
from swarmml.engine import networks as engine_networks
from swarmml.engine import services as engine_services
from swarmml.engine import tasks as engine_tasks
from swarmml.errors import SwarmmlError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tiny(cluster, host_engine):
    return tiny_image.build_and_push(host_engine, cluster.name)


def stack_file(tmp_path, image, networks=("a",), constraints=()):
    placement = f"placement: {{constraints: {list(constraints)!r}}}" if constraints else ""
    text = textwrap.dedent(f"""\
        version: "3.8"
        services:
          app:
            image: {image}
            command: ["/bin/sleep", "infinity"]
            networks: {list(networks)!r}
            deploy:
              replicas: 2
              update_config: {{parallelism: 1, delay: 2s, order: stop-first}}
              {placement}
        networks:
          a: {{}}
          b: {{}}
        """)
    path = tmp_path / "stack.yml"
    path.write_text(text)
    return str(path)


def running_tasks(client, name):
    svc = engine_services.service(client, name)
    return {t["ID"]: t for t in engine_tasks.tasks(client, [svc["ID"]], desired_running=True)
            if t["Status"]["State"] == "running"}


@pytest.fixture
def fresh_stack(cluster, tiny, request):
    name = "it-rollout-" + request.node.name.split("_")[3][:8]
    yield name
    try:
        deploy.remove_stack(cluster.client, name)
    except SwarmmlError as exc:  # the test's own failure matters more than the cleanup's
        print(f"cleanup of {name}: {exc}")


def test_a_constraint_every_node_meets_redeploys_in_seconds(cluster, tiny, fresh_stack, tmp_path):
    first = deploy.deploy([stack_file(tmp_path, tiny)], name=fresh_stack, client=cluster.client, show_progress=False,
                          timeout=120)
    assert first.convergence.ok, first.convergence.problems
    before = set(running_tasks(cluster.client, f"{fresh_stack}_app"))
    again = deploy.deploy([stack_file(tmp_path, tiny, constraints=["node.platform.os == linux"])], name=fresh_stack,
                          client=cluster.client, show_progress=False, timeout=60)
    assert [a.action for a in again.plan.of("update", "service")] == ["update"]
    assert again.convergence.ok, again.convergence.problems
    assert again.convergence.duration_s < 10
    assert set(running_tasks(cluster.client, f"{fresh_stack}_app")) == before  # Swarm kept them


def test_a_change_of_networks_alone_waits_for_the_tasks_to_move(cluster, tiny, fresh_stack, tmp_path):
    first = deploy.deploy([stack_file(tmp_path, tiny)], name=fresh_stack, client=cluster.client, show_progress=False,
                          timeout=120)
    assert first.convergence.ok, first.convergence.problems
    before = set(running_tasks(cluster.client, f"{fresh_stack}_app"))
    again = deploy.deploy([stack_file(tmp_path, tiny, networks=("b",))], name=fresh_stack, client=cluster.client,
                          show_progress=False, timeout=120)
    assert again.convergence.ok, again.convergence.problems
    now = running_tasks(cluster.client, f"{fresh_stack}_app")
    assert len(now) == 2 and not set(now) & before, "deploy returned before Swarm replaced the tasks"
    net_b = engine_networks.network_names(cluster.client)
    for t in now.values():
        attached = {net_b.get(a["Network"]["ID"]) for a in t.get("NetworksAttachments") or []}
        assert f"{fresh_stack}_b" in attached and f"{fresh_stack}_a" not in attached
