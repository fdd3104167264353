"""`swarmml autoscale install`: the controller as a service on a manager, from swarmml's own code.

The image is built by swarmml.build.autoscaler. The service runs one task
on a manager with the manager's docker socket mounted, on the networks of
the autoscaled services so that it can reach their tasks' /metrics.
"""
from __future__ import annotations

import time

from swarmml.ops import converge
from swarmml.autoscale import lease as leases
from swarmml.stack.autoscale_policy import PREFIX
from swarmml.console import progress
from swarmml.engine import configs as engine_configs
from swarmml.engine import services as engine_services
from swarmml.engine import swarm as engine_swarm
from swarmml.engine import tasks as engine_tasks
from swarmml.errors import SwarmmlError, UsageError
from swarmml.ops.placement import is_running

SERVICE = "swarmml-autoscaler"
ROLE_LABEL = "io.swarmml.role"
SOCKET = "/var/run/docker.sock"
def service_spec(image: str, networks: list[str]) -> dict:
    """Pure: the controller's ServiceSpec. networks: IDs or names of the autoscaled services' networks."""
    return {
        "Name": SERVICE,
        "Labels": {ROLE_LABEL: "autoscaler"},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": image,
                # The holder's name in the lease: the task, so two tasks of an update are two holders.
                "Env": ["SWARMML_AUTOSCALE_HOLDER={{.Task.Name}}"],
                "Mounts": [{"Type": "bind", "Source": SOCKET, "Target": SOCKET}],
                "StopGracePeriod": 10_000_000_000,
            },
            "Placement": {"Constraints": ["node.role==manager"]},
            "Resources": {"Limits": {"NanoCPUs": 250_000_000, "MemoryBytes": 128 * 1024 * 1024}},
            "RestartPolicy": {"Condition": "any", "Delay": 2_000_000_000},
            "Networks": [{"Target": n} for n in sorted(set(networks))],
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        # Stop the old controller before the new one starts; the lease covers any overlap.
        "UpdateConfig": {"Parallelism": 1, "Order": "stop-first", "FailureAction": "pause"},
    }


def autoscaled_networks(services: list[dict]) -> list[str]:
    """Pure: the network IDs of every service that carries an autoscale policy."""
    out = set()
    for s in services:
        if any(k.startswith(PREFIX) for k in (s["Spec"].get("Labels") or {})):
            for n in s["Spec"]["TaskTemplate"].get("Networks") or []:
                out.add(n["Target"])
    return sorted(out)


def install(client, image: str, networks: list[str] | None = None, wait: bool = True, timeout: float = 180,
            show: bool = True) -> tuple[str, list[str]]:
    """Create or update the controller service; returns (what was done, the networks it joined).

    wait: until the new controller runs and has taken its first look at the services (wait_first_look), so
    that load right after the install meets a running autoscaler, not one still pulling its image.
    """
    engine_swarm.require_manager(client)
    nets = networks if networks else autoscaled_networks(engine_services.services(client))
    if not nets:
        raise UsageError("no service carries io.swarmml.autoscale.* labels yet, so the autoscaler would join no "
                         "network; deploy the stack first, or give --network NAME")
    spec = service_spec(image, nets)
    found = [s for s in engine_services.services(client) if s["Spec"]["Name"] == SERVICE]
    markers, since = converge.snapshot(client, [SERVICE]) if found else {}, converge.now(client)
    if found:
        engine_services.update_service(client, found[0], spec)
    else:
        engine_services.create_service(client, spec)
    if wait:
        started = time.monotonic()
        done = converge.wait(client, [SERVICE], "deploy", markers, timeout=timeout, since=since, show=show)
        if not done.ok:
            raise SwarmmlError("the autoscaler did not start: " + "; ".join(done.problems))
        wait_first_look(client, max(10.0, timeout - (time.monotonic() - started)), show)
    return ("updated" if found else "created"), nets


def first_look(lease_labels: dict | None, running: set[str]) -> tuple[bool, str]:
    """Pure: (whether a running task of the controller holds the lease and has published a look, what it shows)."""
    view = leases.read(lease_labels)
    if view.holder not in running:
        return False, f"the lease is held by {view.holder}" if view.holder else "no lease taken yet"
    if view.status is None:
        return False, f"{view.holder} holds the lease; its first look is on its way"
    return True, f"{view.holder} looked at {len((view.status or {}).get('services') or {})} service(s)"


def wait_first_look(client, timeout: float, show: bool = True) -> str:
    """Until the controller's running task holds the lease and has published its first look; what it shows."""
    deadline = time.monotonic() + timeout
    why = ""
    with progress(show=show) as bar:
        task = bar.add_task(f"{SERVICE}: first look", total=None, status="")
        while time.monotonic() < deadline:
            svc = engine_services.service(client, SERVICE)
            # The holder's name in the lease is the task's name ({{.Task.Name}}, see service_spec).
            running = {f"{SERVICE}.{t.get('Slot')}.{t['ID']}" for t in engine_tasks.tasks(client, [svc["ID"]])
                       if is_running(t)}
            found = engine_configs.lease(client, leases.LEASE_NAME)
            ok, why = first_look(found[2] if found else None, running)
            bar.update(task, status=why[:90])
            if ok:
                bar.update(task, total=1, completed=1)
                return why
            time.sleep(1.0)
    raise SwarmmlError(f"the autoscaler runs but has not looked at the services within {timeout:.0f} s ({why}); "
                       f"`swarmml logs {SERVICE}` says why")


def uninstall(client) -> bool:
    found = [s for s in engine_services.services(client) if s["Spec"]["Name"] == SERVICE]
    for s in found:
        engine_services.remove_service(client, s["ID"])
    return bool(found)
