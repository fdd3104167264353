"""Planning a deploy: desired specs against what the engine answers. No daemon."""
import copy
import textwrap

import pytest

from swarmml.errors import UsageError
from swarmml.stack import convert, load
from swarmml.stack.plan import canonical, diff, plan, rows

DIGEST = "@sha256:" + "a" * 64


def desired(tmp_path, body, name="st"):
    f = tmp_path / "s.yml"
    f.write_text(textwrap.dedent(body))
    return convert(load([str(f)], name=name, environ={}))


def engine_view(spec, network_ids):
    """What Engine API 1.41 answers for a spec it stored (as seen on the cluster): defaults filled in,
    network names turned to IDs, the image pinned to a digest, Data-less secret references with IDs."""
    out = copy.deepcopy(spec)
    task = out["TaskTemplate"]
    cs = task["ContainerSpec"]
    cs["Isolation"] = "default"
    cs["Image"] += DIGEST
    cs.pop("Privileges", None)
    for ref in cs.get("Secrets", []):
        ref["SecretID"] = "sid"
    task["ForceUpdate"] = 0
    task["Runtime"] = "container"
    task.setdefault("Resources", {}).setdefault("Limits", {})
    task.setdefault("Placement", {}).setdefault("Platforms", [{"Architecture": "amd64", "OS": "linux"}])
    if "RestartPolicy" in task:
        task["RestartPolicy"].setdefault("Condition", "any")
        task["RestartPolicy"].setdefault("MaxAttempts", 0)
    for n in task["Networks"]:
        n["Target"] = network_ids[n["Target"]]
    out["EndpointSpec"].setdefault("Mode", "vip")
    for p in out["EndpointSpec"].get("Ports", []):
        p.setdefault("Protocol", "tcp")
        p.setdefault("PublishMode", "ingress")
    for key in ("UpdateConfig", "RollbackConfig"):
        if key in out:
            out[key].setdefault("FailureAction", "pause")
            out[key].setdefault("Order", "stop-first")
            out[key].setdefault("MaxFailureRatio", 0)
    return out


STACK = """
    services:
      web:
        image: x:1
        ports: [{target: 80, published: 8080}]
        secrets: [token]
        deploy:
          replicas: 0
          update_config: {parallelism: 2}
          restart_policy: {delay: 1s}
      db:
        image: pg:16
        deploy: {mode: global}
    secrets:
      token: {content: s3cret}
"""


def current_of(d):
    ids = {name: "id-" + name for name in d.networks}
    current = {"services": {n: {"ID": n, "Version": 1, "Spec": engine_view(s, ids)} for n, s in d.services.items()},
               "networks": {n: {"ID": i, "Labels": {}} for n, i in ids.items()},
               "secrets": {n: {"ID": "sid", "Labels": s["Labels"]} for n, s in d.secrets.items()},
               "configs": {}}
    return current, {i: n for n, i in ids.items()}


def test_an_unchanged_stack_plans_nothing(tmp_path):
    d = desired(tmp_path, STACK)
    current, names = current_of(d)
    p = plan(d, current, names)
    assert not p.changes_anything
    assert {(a.kind, a.action) for a in p.actions} == {("network", "unchanged"), ("secret", "unchanged"),
                                                      ("service", "unchanged")}
    assert plan(d, current, names, pin_digests=True).of("update")  # a pinned digest is then a change


def test_changes_are_listed_field_by_field(tmp_path):
    d = desired(tmp_path, STACK)
    current, names = current_of(d)
    d2 = desired(tmp_path, STACK.replace("x:1", "x:2").replace("replicas: 0", "replicas: 3")
                 .replace("published: 8080", "published: 8081").replace("mode: global", "mode: replicated"))
    p = plan(d2, current, names)
    web = next(a for a in p.actions if a.name == "st_web")
    assert web.action == "update"
    assert ("TaskTemplate.ContainerSpec.Image", "x:1", "x:2") in web.changes
    assert ("Mode.Replicated.Replicas", 0, 3) in web.changes
    assert ("EndpointSpec.Ports[0].PublishedPort", 8080, 8081) in web.changes
    assert ("Labels.com.docker.stack.image", "x:1", "x:2") in web.changes
    db = next(a for a in p.actions if a.name == "st_db")
    assert ("Mode.Global", {}, None) in db.changes and ("Mode.Replicated", None, {"Replicas": 1}) in db.changes
    table = rows(p)
    assert {"action": "update", "kind": "service", "name": "st_web"}.items() <= table[-1].items()
    assert "TaskTemplate.ContainerSpec.Image: x:1 -> x:2" in next(r for r in table if r["name"] == "st_web")["changes"]
    js = p.to_json()
    assert js["stack"] == "st" and {"field": "Mode.Replicated.Replicas", "old": 0, "new": 3} in next(
        a for a in js["actions"] if a["name"] == "st_web")["changes"]


def test_creates_and_prune(tmp_path):
    d = desired(tmp_path, STACK)
    current, names = current_of(d)
    smaller = desired(tmp_path, "services:\n  web:\n    image: x:1\n    networks: [n]\nnetworks:\n  n: {}\n")
    p = plan(smaller, current, names, prune=True)
    actions = {(a.kind, a.name): a.action for a in p.actions}
    assert actions[("network", "st_n")] == "create"
    assert actions[("service", "st_db")] == "remove" and actions[("network", "st_default")] == "remove"
    (old_secret,) = [n for n in current["secrets"]]
    assert actions[("secret", old_secret)] == "remove"  # an unused hashed version goes even without prune
    kept = {(a.kind, a.name): a.action for a in plan(smaller, current, names).actions}
    assert ("service", "st_db") not in kept and ("network", "st_default") not in kept
    assert kept[("secret", old_secret)] == "remove"


def test_new_secret_content_is_a_new_object(tmp_path):
    d = desired(tmp_path, STACK)
    current, names = current_of(d)
    d2 = desired(tmp_path, STACK.replace("s3cret", "rotated"))
    p = plan(d2, current, names)
    (new,) = [a.name for a in p.of("create", "secret")]
    assert [a.name for a in p.of("remove", "secret")] == list(current["secrets"])
    web = next(a for a in p.actions if a.name == "st_web")
    assert [c[0] for c in web.changes] == ["TaskTemplate.ContainerSpec.Secrets[0].SecretName"]
    assert web.changes[0][2] == new


def test_a_fixed_name_with_new_content_is_refused_before_anything_happens(tmp_path):
    body = STACK.replace("token: {content: s3cret}", "token: {content: s3cret, name: fixed-token}")
    d = desired(tmp_path, body)
    current, names = current_of(d)
    with pytest.raises(UsageError, match="secrets.token: the content of secret fixed-token changed"):
        plan(desired(tmp_path, body.replace("s3cret", "other")), current, names)


def test_canonical_keeps_what_matters():
    spec = {"TaskTemplate": {"ContainerSpec": {"Isolation": "default", "Image": "a:1" + DIGEST}, "ForceUpdate": 2,
                             "Runtime": "container", "Placement": {"Platforms": [{"OS": "linux"}]}},
            "EndpointSpec": {"Mode": "vip"}, "Mode": {"Replicated": {"Replicas": 0}}}
    assert canonical(spec) == {"TaskTemplate": {"ContainerSpec": {"Image": "a:1"}},
                               "Mode": {"Replicated": {"Replicas": 0}}}
    pinned = canonical(spec, pin_digests=True)["TaskTemplate"]
    assert pinned["ContainerSpec"]["Image"] == "a:1" + DIGEST and pinned["Placement"]["Platforms"] == [{"OS": "linux"}]
    assert canonical({"EndpointSpec": {"Mode": "dnsrr"}}) == {"EndpointSpec": {"Mode": "dnsrr"}}
    assert canonical({"Mode": {"Global": {}}}) == {"Mode": {"Global": {}}}
    assert canonical({"UpdateConfig": {"Parallelism": 1, "Order": "stop-first", "FailureAction": "rollback"}}) == {
        "UpdateConfig": {"Parallelism": 1, "FailureAction": "rollback"}}


def test_diff_walks_lists_of_mappings():
    assert diff({"a": [{"x": 1}, {"x": 2}]}, {"a": [{"x": 1}, {"x": 3}]}) == [("a[1].x", 2, 3)]
    assert diff({"a": [1]}, {"a": [1, 2]}) == [("a", [1], [1, 2])]
    assert diff({"a": {"b": 1}}, {"a": {"b": 1}}) == []
