"""`swarmml doctor`: what this machine and cluster can do, one finding per line.

Facts are gathered here; `findings(facts)` is pure and says what to do about each.
"""
import os
import shutil
from dataclasses import asdict, dataclass

import requests

from swarmml.cluster import local as clusters
from swarmml import engine
from swarmml.cluster import registry as registries
from swarmml.cluster import ssh as ssh_cluster
from swarmml.engine import swarm
from swarmml.errors import SwarmmlError

MIN_ENGINE = (20, 10)
MIN_FREE_GB = 5.0


@dataclass
class Finding:
    level: str  # ok | warn | fail
    check: str
    message: str


def _version_tuple(v):
    parts = []
    for p in (v or "0").split("+")[0].split("-")[0].split("."):
        parts.append(int(p) if p.isdigit() else 0)
    return tuple(parts + [0, 0])[:2]


def findings(facts):
    """Pure: findings from facts (see gather())."""
    out = []
    eng = facts.get("engine")
    if facts.get("target"):
        out.append(Finding("ok" if eng is not None else "fail", "endpoint", facts["target"]))
    if eng is None:
        out.append(Finding("fail", "engine", f"no Docker engine answers ({facts.get('engine_error')}); "
                                             "run `bash scripts/engine-up.sh` or `swarmml cluster up`"))
    else:
        ok = _version_tuple(eng["server_version"]) >= MIN_ENGINE
        out.append(Finding("ok" if ok else "warn", "engine",
                           f"engine {eng['server_version']} (API {eng['api_version']})"
                           + ("" if ok else f"; swarmml is tested on {MIN_ENGINE[0]}.{MIN_ENGINE[1]}+, "
                                            "upgrade the engine")))
        if eng["swarm_state"] == "active" and eng["swarm_control"]:
            out.append(Finding("ok", "swarm", f"swarm active, this engine is a manager, {eng['swarm_nodes']} nodes"))
            if eng.get("swarm_managers"):
                out.append(quorum_finding(eng["swarm_managers"]))
        elif eng["swarm_state"] == "active":
            out.append(Finding("warn", "swarm", "this engine is a swarm worker; "
                                                "point DOCKER_HOST at a manager to deploy"))
        else:
            out.append(Finding("warn", "swarm", f"swarm {eng['swarm_state']}: run `swarmml cluster up` for a local "
                                                "cluster, or `docker swarm init`"))
    if facts.get("ipvs"):
        out.append(Finding("ok", "routing", "kernel has IPVS: the ingress routing mesh and VIP endpoints work; "
                                            "stacks may publish in ingress mode"))
    else:
        out.append(Finding("warn", "routing", "kernel has no IPVS: the routing mesh and VIP endpoints don't route; "
                                              "use endpoint_mode: dnsrr behind the gateway and publish in host mode "
                                              "(docker-stack.yml does)"))
    free = facts.get("free_gb")
    if free is not None:
        level = "ok" if free >= MIN_FREE_GB else "fail"
        out.append(Finding(level, "disk", f"{free:.1f} GB free under {facts.get('disk_path')}"
                           + ("" if level == "ok" else f"; free at least {MIN_FREE_GB:.0f} GB (docker image prune)")))
    reg = facts.get("registry")
    if reg is not None:
        if reg.get("reachable"):
            out.append(Finding("ok", "registry", f"cluster registry answers at {reg['url']}"))
        else:
            out.append(Finding("fail", "registry", f"cluster registry does not answer at {reg.get('url')}; "
                                                   f"run `swarmml cluster up --name {reg.get('cluster')}`"))
    return out


def quorum_finding(managers):
    """Pure: how many manager losses the swarm survives (Raft needs a majority of its managers)."""
    survives = (managers - 1) // 2
    if managers == 1:
        return Finding("warn", "managers", "1 manager: if it is lost, nothing is scheduled or changed until it "
                                           "returns; run 3 (`swarmml cluster up` does, or `docker node promote`)")
    if managers % 2 == 0:
        return Finding("warn", "managers", f"{managers} managers survive no more losses than {managers - 1} "
                                           f"({survives}), and need {managers // 2 + 1} for a quorum; run an odd "
                                           "number")
    return Finding("ok", "managers", f"{managers} managers: the swarm survives the loss of {survives}")


def kernel_has_ipvs():
    return os.path.isdir("/proc/sys/net/ipv4/vs") or os.path.exists("/proc/net/ip_vs")


def gather(cluster=None):
    """Facts from the engine in use, this kernel, the disk and the cluster registry."""
    facts = {"ipvs": kernel_has_ipvs()}
    try:
        target = engine.resolve_target(cluster)
        facts["target"] = target.describe()
        facts["engine"] = swarm.engine_facts(engine.connect(target.base_url, tls=target.tls))
    except SwarmmlError as exc:
        facts["engine"], facts["engine_error"] = None, str(exc)
        target = None
    path = (facts.get("engine") or {}).get("docker_root") or "/var/lib/docker"
    # A node's docker root is inside its container; its disk is this machine's.
    path = path if os.path.exists(path) else "/"
    facts["disk_path"] = path
    facts["free_gb"] = shutil.disk_usage(path).free / 1e9
    name = cluster or (target.cluster if target else None)
    if name:
        try:
            reg = clusters.registry(name)
            if reg.login:
                # It answers 401 until a login: that still says it runs, and that its TLS is the one we made.
                url = f"https://{reg.push_prefix}/v2/"
                reachable = requests.get(url, timeout=3, verify=registries.trust_path(reg.push_prefix)).status_code \
                    in (200, 401)
            else:
                url = f"http://{reg.push_prefix}/v2/"
                reachable = requests.get(url, timeout=3).status_code == 200
        except (SwarmmlError, requests.RequestException, OSError):  # OSError: its CA file is gone
            url, reachable = None, False
        facts["registry"] = {"cluster": name, "url": url, "reachable": reachable}
    return facts


def run(cluster=None):
    if cluster and ssh_cluster.read_record(cluster) is not None and not os.path.lexists(engine.cluster_socket(cluster)):
        found = [Finding(v.level, v.check, f"{host}: {v.message}") for host, v in ssh_cluster.doctor(cluster)]
        return {"cluster": cluster, "over": "ssh"}, found
    facts = gather(cluster)
    return facts, findings(facts)


def as_json(facts, found):
    return {"facts": facts, "findings": [asdict(f) for f in found],
            "ok": all(f.level != "fail" for f in found)}
