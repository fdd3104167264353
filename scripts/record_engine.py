"""Record real engine answers from a local swarmml cluster into tests/data/engine/, for the replay tests.

    python3 scripts/record_engine.py --cluster rollout [SCENARIO ...]

Each scenario makes a service from a 3 MB image (tests/helpers/tiny_image.py), changes it the way one
branch of the rollout reader or of the node-loss drill needs, and polls the manager like
swarmml.ops.converge does. A frame is kept whenever what the reader looks at changed, with what the
engine answered then:

- service: GET /services/{id}
- tasks: GET /tasks?filters={"service":[id]}
- up_to_date: the IDs in GET /tasks?filters={"service":[id],"_up-to-date":["true"]} (IDs only:
  the tasks themselves are in `tasks`)
- nodes: GET /nodes; info: GET /info; swarm: GET /swarm (first frame only: it does not change)
- logs: the last lines of failed tasks (GET /tasks/{id}/logs), where the scenario has any

plus `at_s` (seconds since the scenario began) and `events` (what the script did, when).
Everything the script makes is removed before the next scenario. Run it again when the Engine
API changes; the files are rewritten whole.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests", "helpers")]  # a script: swarmml and the tiny image from this checkout

import tiny_image  # noqa: E402  (from the checkout's tests, put on the path above)

from swarmml.cluster import local as clusters  # noqa: E402
from swarmml import engine as engines  # noqa: E402
from swarmml.engine import networks as engine_networks  # noqa: E402
from swarmml.engine import nodes as engine_nodes  # noqa: E402
from swarmml.engine import services as engine_services  # noqa: E402
from swarmml.engine import swarm as engine_swarm  # noqa: E402
from swarmml.engine import tasks as engine_tasks  # noqa: E402
from swarmml.errors import SwarmmlError  # noqa: E402

OUT = os.path.join(ROOT, "tests", "data", "engine")
POLL_S = 0.5
PREFIX = "rec"
SLEEP = ["/bin/sleep", "infinity"]
FAIL = ["/bin/sh", "-c", "echo 'model file missing: /models/x.skops'; exit 3"]
SECOND = 1_000_000_000


def service_spec(name, image, replicas=3, command=SLEEP, **extra):
    spec = {"Name": f"{PREFIX}_{name}", "Labels": {"com.docker.stack.namespace": PREFIX},
            "TaskTemplate": {"ContainerSpec": {"Image": image, "Command": command},
                             "RestartPolicy": {"Condition": "any", "Delay": SECOND // 2}},
            "Mode": {"Replicated": {"Replicas": replicas}},
            "UpdateConfig": {"Parallelism": 1, "Delay": SECOND // 2, "Monitor": 2 * SECOND,
                             "FailureAction": "pause", "Order": "stop-first"}}
    for key, value in extra.items():
        spec[key] = value
    return spec


class Recorder:
    def __init__(self, client, name, note):
        self.client, self.name, self.note = client, name, note
        self.frames, self.events, self.t0 = [], [], time.monotonic()
        self.sid = None
        self._last = None

    def event(self, text):
        self.events.append({"at_s": round(time.monotonic() - self.t0, 2), "event": text})
        self._last = None  # a frame right after every event, changed or not: what a caller reads next
        print(f"  {self.name}: {text}")

    def frame(self, logs_of_failed=False):
        svc = engine_services.service(self.client, self.sid)
        tasks = engine_tasks.tasks(self.client, [self.sid])
        fresh = sorted(t["ID"] for t in engine_tasks.tasks(self.client, [self.sid], up_to_date=True))
        nodes = engine_nodes.nodes(self.client)
        seen = (json.dumps(svc.get("UpdateStatus"), sort_keys=True), svc["Version"]["Index"], tuple(fresh),
                tuple(sorted((t["ID"], t["Status"]["State"], t["DesiredState"], t.get("NodeID", ""),
                             t["Status"].get("Err", "")) for t in tasks)),
                tuple(sorted((n["ID"], n["Status"]["State"]) for n in nodes)))
        if seen == self._last:
            return False
        self._last = seen
        f = {"at_s": round(time.monotonic() - self.t0, 2), "service": svc, "tasks": tasks, "up_to_date": fresh,
             "nodes": nodes, "info": engine_swarm.info(self.client)}
        if not self.frames:
            f["swarm"] = self.client.api.inspect_swarm()
        if logs_of_failed:
            failed = [t for t in tasks if t["Status"]["State"] == "failed"]
            f["logs"] = {t["ID"]: engine_tasks.task_log_tail(self.client, t["ID"], lines=1) for t in failed}
        self.frames.append(f)
        return True

    def poll(self, until, timeout, logs_of_failed=False, max_frames=40):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.frames) < max_frames:
            self.frame(logs_of_failed)
            if until(self.frames[-1]):
                return True
            time.sleep(POLL_S)
        return False

    def save(self):
        os.makedirs(OUT, exist_ok=True)
        path = os.path.join(OUT, f"{self.name}.json")
        with open(path, "w") as f:
            json.dump({"note": self.note, "events": self.events, "frames": self.frames}, f, indent=1, sort_keys=True)
            f.write("\n")
        print(f"  wrote {os.path.relpath(path, ROOT)} ({len(self.frames)} frames)")


def running(frame, want):
    return sum(1 for t in frame["tasks"]
               if t["DesiredState"] == "running" and t["Status"]["State"] == "running") == want


def update_state(frame):
    return (frame["service"].get("UpdateStatus") or {}).get("State")


def create(client, spec, rec):
    rec.sid, _ = engine_services.create_service(client, spec)
    rec.event("created")


def change(client, rec, mutate, rollback=False):
    svc = engine_services.service(client, rec.sid)
    spec = mutate(json.loads(json.dumps(svc["Spec"])))
    engine_services.update_service(client, svc, spec, rollback=rollback)
    rec.event("rolled back by request" if rollback else "updated")


def env_change(spec):
    spec["TaskTemplate"]["ContainerSpec"]["Env"] = ["MODEL_VERSION=2"]
    return spec


def broken(action):
    def mutate(spec):
        spec["TaskTemplate"]["ContainerSpec"]["Command"] = FAIL
        spec["UpdateConfig"]["FailureAction"] = action
        return spec
    return mutate


# --- scenarios ---------------------------------------------------------------------

def update_rolls(client, image, cluster):
    rec = Recorder(client, "update-rolls", "3 replicas; an env change rolled one task at a time until completed")
    create(client, service_spec("rolls", image), rec)
    rec.poll(lambda f: running(f, 3), 60)
    change(client, rec, env_change)
    rec.poll(lambda f: update_state(f) == "completed" and running(f, 3), 90)
    return rec


def update_rolled_back(client, image, cluster):
    rec = Recorder(client, "update-rolled-back", "an update to a command that exits 3, failure_action rollback: "
                   "Swarm rolls back by itself")
    create(client, service_spec("rolledback", image, replicas=2), rec)
    rec.poll(lambda f: running(f, 2), 60)
    change(client, rec, broken("rollback"))
    rec.poll(lambda f: update_state(f) == "rollback_completed" and running(f, 2), 120, logs_of_failed=True)
    return rec


def manual_rollback(client, image, cluster):
    rec = Recorder(client, "manual-rollback", "an env change, then `swarmml rollback` (rollback=previous)")
    create(client, service_spec("manual", image, replicas=2), rec)
    rec.poll(lambda f: running(f, 2), 60)
    change(client, rec, env_change)
    rec.poll(lambda f: update_state(f) == "completed" and running(f, 2), 90)
    change(client, rec, lambda s: s, rollback=True)
    rec.poll(lambda f: update_state(f) == "rollback_completed" and running(f, 2), 90)
    return rec


def update_paused(client, image, cluster):
    rec = Recorder(client, "update-paused", "an update to a command that exits 3, failure_action pause")
    create(client, service_spec("paused", image, replicas=2), rec)
    rec.poll(lambda f: running(f, 2), 60)
    change(client, rec, broken("pause"))
    rec.poll(lambda f: update_state(f) == "paused", 90, logs_of_failed=True)
    return rec


def crash_loop(client, image, cluster):
    rec = Recorder(client, "crash-loop", "a new service whose command exits 3: Swarm restarts it forever")
    create(client, service_spec("crash", image, replicas=1, command=FAIL), rec)
    rec.poll(lambda f: sum(t["Status"]["State"] == "failed" for t in f["tasks"]) >= 4, 90, logs_of_failed=True)
    return rec


def unplaceable(client, image, cluster):
    rec = Recorder(client, "unplaceable", "2 replicas reserving 1000 CPUs each: the scheduler finds no node")
    spec = service_spec("unplaceable", image, replicas=2)
    spec["TaskTemplate"]["Resources"] = {"Reservations": {"NanoCPUs": 1000 * SECOND}}
    create(client, spec, rec)
    rec.poll(lambda f: len(rec.frames) >= 3 and all("no suitable node" in (t["Status"].get("Err") or "")
                                                   for t in f["tasks"]), 30)
    return rec


def network_only(client, image, cluster):
    rec = Recorder(client, "network-only", "2 replicas on network a moved to network b alone: every task is "
                   "replaced; the first frame is read right after the update call returned")
    nets = {}
    for n in ("a", "b"):
        engine_networks.create_network(client, {"Name": f"{PREFIX}_{n}", "Driver": "overlay",
                                                "Labels": {"com.docker.stack.namespace": PREFIX}})
        nets[n] = next(i for i, name in engine_networks.network_names(client).items() if name == f"{PREFIX}_{n}")
    spec = service_spec("netonly", image, replicas=2)
    spec["TaskTemplate"]["Networks"] = [{"Target": nets["a"]}]
    create(client, spec, rec)
    rec.poll(lambda f: running(f, 2), 60)

    def move(s):
        s["TaskTemplate"]["Networks"] = [{"Target": nets["b"]}]
        return s
    change(client, rec, move)
    rec.poll(lambda f: update_state(f) == "completed" and running(f, 2), 90)
    return rec


def constraint_only(client, image, cluster):
    rec = Recorder(client, "constraint-only", "3 replicas given a constraint every node meets "
                   "(node.platform.os == linux): Swarm keeps every task")
    create(client, service_spec("constraint", image), rec)
    rec.poll(lambda f: running(f, 3), 60)

    def constrain(s):
        s["TaskTemplate"]["Placement"] = {"Constraints": ["node.platform.os == linux"]}
        return s
    change(client, rec, constrain)
    rec.poll(lambda f: len(rec.frames) >= 4, 6)
    return rec


def node_down(client, image, cluster):
    rec = Recorder(client, "node-down", "6 replicas over 3 nodes; node3's container stopped until Swarm marked "
                   "it down and ran its replicas elsewhere, then started again")
    create(client, service_spec("nodedown", image, replicas=6), rec)
    rec.poll(lambda f: running(f, 6), 90)
    clusters.stop_node(cluster, "node3")
    rec.event("stopped node3")
    try:
        down = [n["ID"] for n in engine_nodes.nodes(client) if n["Description"]["Hostname"] == "node3"]

        def recovered(f):
            elsewhere = [t for t in f["tasks"] if t["DesiredState"] == "running" and t["Status"]["State"] == "running"
                         and t.get("NodeID") not in down]
            return len(elsewhere) >= 6
        rec.poll(recovered, 120, max_frames=30)
        rec.poll(lambda f: False, 4, max_frames=32)  # a moment more: the drill waits after the recovery
    finally:
        clusters.start_node(cluster, "node3")
        rec.event("started node3")
    rec.poll(lambda f: all(n["Status"]["State"] == "ready" for n in f["nodes"]), 60, max_frames=40)
    return rec


SCENARIOS = {f.__name__.replace("_", "-"): f for f in (update_rolls, update_rolled_back, manual_rollback,
                                                        update_paused, crash_loop, unplaceable, network_only,
                                                        constraint_only, node_down)}


def clean(client):
    for s in engine_services.services(client, f"com.docker.stack.namespace={PREFIX}"):
        engine_services.remove_service(client, s["ID"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        nets = engine_swarm.stack_objects(client, PREFIX)["networks"]
        if not nets:
            return
        for n in nets.values():
            try:
                engine_networks.remove_network(client, n["ID"])
            except SwarmmlError:
                pass  # tasks are still leaving it
        time.sleep(0.5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cluster", required=True, help="a local swarmml cluster (swarmml cluster up --name NAME)")
    ap.add_argument("scenarios", nargs="*", help=f"default: all of {', '.join(sorted(SCENARIOS))}")
    args = ap.parse_args()
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        ap.error(f"unknown scenario {unknown[0]!r}")
    client = clusters.manager_client(args.cluster)
    image = tiny_image.build_and_push(engines.host_client(), args.cluster)
    for name in args.scenarios or sorted(SCENARIOS):
        print(name)
        clean(client)
        try:
            SCENARIOS[name](client, image, args.cluster).save()
        finally:
            clean(client)


if __name__ == "__main__":
    main()
