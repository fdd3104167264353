"""Readings of a stack for `swarmml top`: the engine's lists, the probe's pages, the engines' stats.

A reading is plain data (see swarmml.observe.top.snapshot, which turns two of them
into numbers). I/O goes through swarmml.engine only.
"""
import time
from concurrent.futures import ThreadPoolExecutor

from swarmml.ops import services as svc
from swarmml.autoscale import status as autoscale_status
from swarmml.autoscale.lease import LEASE_NAME
from swarmml.stack.autoscale_policy import has_policy
from swarmml.engine import configs as engine_configs
from swarmml.engine import containers as engine_containers
from swarmml.engine import nodes as engine_nodes
from swarmml.engine import services as engine_services
from swarmml.engine import tasks as engine_tasks
from swarmml.errors import NotFound, SwarmmlError

METRICS_PORT, STATS_URL = 8080, ":8404/stats;csv"


def plain_task(task: dict, network: str | None) -> dict:
    """Pure: a task (Engine API JSON) -> the fields top uses; ip is its address on `network`."""
    ip = None
    for na in task.get("NetworksAttachments") or []:
        if na["Network"]["Spec"]["Name"] == network and na.get("Addresses"):
            ip = na["Addresses"][0].split("/")[0]
    return {"id": task["ID"], "service_id": task["ServiceID"], "slot": task.get("Slot"),
            "node_id": task.get("NodeID") or "", "state": task["Status"]["State"], "ip": ip,
            "container_id": (task["Status"].get("ContainerStatus") or {}).get("ContainerID")}


def choose_network(tasks: list[dict]) -> str | None:
    """Pure: the attachable network most of the running tasks share (the stack's overlay), None if none."""
    count: dict[str, int] = {}
    for t in tasks:
        for na in t.get("NetworksAttachments") or []:
            spec = na["Network"]["Spec"]
            if spec.get("Attachable") and not (spec.get("Labels") or {}).get("com.docker.swarm.internal"):
                count[spec["Name"]] = count.get(spec["Name"], 0) + 1
    return max(sorted(count), key=lambda n: count[n]) if count else None


def rollout(service: dict) -> dict | None:
    """Pure: a service's UpdateStatus as {state, message}, when there is one."""
    st = service.get("UpdateStatus")
    return {"state": st.get("State"), "message": st.get("Message", "")} if st else None


def autoscale(lease_labels: dict | None, services: list[dict], now: float) -> dict[str, dict]:
    """Pure: service ID -> what `swarmml autoscale status` says of it (its policy, last signal and
    decisions, why it does or does not scale, and the controller's state), for the autoscaled services."""
    report = autoscale_status.report(lease_labels, services, now)
    rows = {r["service"]: r for r in report["services"]}
    return {s["ID"]: {**rows[s["Spec"]["Name"]], "controller": report["controller"]["state"]}
            for s in services if s["Spec"]["Name"] in rows}


class Reader:
    """Reads a stack again and again: keeps the probe and the node engines between readings."""

    def __init__(self, client, stack: str, cluster: str | None):
        self.client, self.stack, self.cluster = client, stack, cluster
        self.probe_id: str | None = None
        self.network: str | None = None
        self.engines: dict = {}
        self.pool = ThreadPoolExecutor(8)

    def read(self) -> dict:
        services = svc.of_stack(engine_services.services(self.client), self.stack)
        names = {s["ID"]: svc.short_name(s) for s in services}
        raw_tasks = [t for t in engine_tasks.tasks(self.client, list(names)) if t["Status"]["State"] == "running"]
        nodes = engine_nodes.nodes(self.client)
        network = choose_network(raw_tasks)
        tasks = [dict(plain_task(t, network), service=names[t["ServiceID"]]) for t in raw_tasks]
        problems = []
        pages: dict[str, dict] = {}
        # The engines' stats are read while the probe fetches the pages: a refresh costs the slower of the two.
        if set(n["ID"] for n in nodes) - set(self.engines):
            self.engines.update(engine_nodes.node_engines(self.client, self.cluster, nodes))
        jobs = {t["id"]: self.pool.submit(engine_containers.container_stats, self.engines[t["node_id"]],
                                          t["container_id"])
                for t in tasks if t["container_id"] and t["node_id"] in self.engines}
        if network and self.network != network:
            self.close_probe()
            image = _probe_image(services)
            self.probe_id, self.network = engine_containers.start_probe(self.client, network, image), network
        if self.probe_id:
            urls = {}
            for t in tasks:
                if t["ip"]:
                    urls[t["id"] + " metrics"] = f"http://{t['ip']}:{METRICS_PORT}/metrics"
                    urls[t["id"] + " stats"] = f"http://{t['ip']}{STATS_URL}"
            for key, page in engine_containers.fetch(self.client, self.probe_id, urls).items():
                task_id, kind = key.split(" ")
                pages.setdefault(task_id, {})[kind] = page
        stats = {task_id: job.result() for task_id, job in jobs.items()}
        scaled = {}
        if any(has_policy(s["Spec"].get("Labels")) for s in services):  # the lease is read only when it matters
            try:
                found = engine_configs.lease(self.client, LEASE_NAME)
                scaled = autoscale(found[2] if found else None, services, time.time())
            except SwarmmlError as exc:  # the rest of the view is still worth showing
                problems.append(str(exc))
        unmeasured = sorted({n["Description"]["Hostname"] for n in nodes if n["ID"] not in self.engines})
        if unmeasured:
            problems.append(f"no engine reachable on {', '.join(unmeasured)}: CPU and memory unknown there")
        return {"stack": self.stack, "time": time.time(), "tasks": tasks, "pages": pages, "stats": stats,
                "services": [{"id": s["ID"], "name": names[s["ID"]],
                              "desired": ((s["Spec"].get("Mode") or {}).get("Replicated") or {}).get("Replicas"),
                              "rollout": rollout(s), "autoscale": scaled.get(s["ID"])} for s in services],
                "nodes": [{"id": n["ID"], "hostname": n["Description"]["Hostname"], "state": n["Status"]["State"],
                           "nano_cpus": (n["Description"].get("Resources") or {}).get("NanoCPUs", 0),
                           "memory_bytes": (n["Description"].get("Resources") or {}).get("MemoryBytes", 0)}
                          for n in nodes],
                "problems": problems}

    def close_probe(self) -> None:
        if self.probe_id:
            engine_containers.stop_probe(self.client, self.probe_id)
            self.probe_id = None

    def close(self) -> None:
        self.close_probe()
        self.pool.shutdown(wait=False)
        for c in self.engines.values():
            if c is not self.client:
                c.close()


def _probe_image(services: list[dict]) -> str:
    """The image the probe runs: the model service's (it has python), else the first service's."""
    images = [s["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] for s in services]
    for image in images:
        if "predictor" in image:
            return image
    if not images:
        raise NotFound("the stack has no services")
    return images[0]
