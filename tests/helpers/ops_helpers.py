"""Engine-shaped plain data for the ops unit tests: services, tasks and nodes as the Engine API returns them."""
import copy

IMAGE = "registry:5000/swarmml/predictor:1@sha256:aa"
TEMPLATE = {"ContainerSpec": {"Image": IMAGE, "Env": ["A=1", "B=2"], "Isolation": "default"},
            "Resources": {"Limits": {"NanoCPUs": 500_000_000}}, "ForceUpdate": 0, "Runtime": "container"}


def spec(replicas=3, name="ml_predictor", template=None, mode=None, constraints=None, max_per_node=None, **extra):
    s = {"Name": name, "Labels": {"com.docker.stack.namespace": name.split("_")[0], "com.docker.stack.image":
                                  IMAGE.split("@")[0]},
         "TaskTemplate": copy.deepcopy(template or TEMPLATE),
         "Mode": mode or {"Replicated": {"Replicas": replicas}},
         "UpdateConfig": {"Parallelism": 1, "Order": "start-first", "FailureAction": "rollback"}}
    placement = {}
    if constraints:
        placement["Constraints"] = constraints
    if max_per_node:
        placement["MaxReplicas"] = max_per_node
    if placement:
        s["TaskTemplate"]["Placement"] = placement
    s.update(extra)
    return s


def service(spec_, update_status=None, previous=None, sid="svc1"):
    out = {"ID": sid, "Version": {"Index": 10}, "Spec": spec_}
    if update_status:
        out["UpdateStatus"] = update_status
    if previous:
        out["PreviousSpec"] = previous
    return out


def node(i, state="ready", availability="active", role="worker", labels=None):
    return {"ID": f"n{i}", "Description": {"Hostname": f"node{i}",
                                           "Platform": {"OS": "linux", "Architecture": "x86_64"},
                                           "Engine": {"Labels": {}}},
            "Status": {"State": state, "Addr": f"10.0.0.{i}"},
            "Spec": {"Availability": availability, "Role": role, "Labels": labels or {}}}


NODES = [node(1, role="manager"), node(2), node(3)]


def task(node_id, slot, state="running", desired="running", template=None, err=None, message=None,
         ts="2026-01-01T00:00:10.5Z", tid=None, container="c"):
    status = {"State": state, "Timestamp": ts, "Message": message or state,
              "ContainerStatus": {"ContainerID": f"{container}{slot}"}}
    if err:
        status["Err"] = err
    t_spec = copy.deepcopy(template or TEMPLATE)
    t_spec.pop("Runtime", None)  # tasks don't carry it
    return {"ID": tid or f"t{slot}-{node_id}-{state}", "NodeID": node_id, "Slot": slot, "DesiredState": desired,
            "Status": status, "Spec": t_spec}


def with_image(template, image):
    out = copy.deepcopy(template)
    out["ContainerSpec"]["Image"] = image
    return out
