"""From two readings to what top shows: replayed from readings of the ML stack recorded once (tests/data/top)."""
import paths
import copy
import json
import os
import re

import pytest

from swarmml.observe import top, topview

DATA = os.path.join(paths.DATA, "top")


def load(name):
    with open(os.path.join(DATA, name)) as f:
        return json.load(f)


def bump(body, n):
    """The same page after n more iris-rf requests of 3 to 5 ms."""
    def add(m):
        le = m.group(2)
        more = n if le is None or le == "+Inf" or float(le) >= 0.005 else 0
        return f"{m.group(1)} {float(m.group(3)) + more}"
    pattern = (r'^((?:swarmml_infer_success_total|swarmml_infer_request_seconds_bucket)'
               r'\{(?:le="([^"]+)",)?model="iris-rf"[^}]*\})\s+(\S+)$')
    return re.sub(pattern, add, body, flags=re.M)


def predictor_ids(reading):
    return [t["id"] for t in reading["tasks"] if t["service"] == "predictor"]


@pytest.fixture
def readings():
    a, b = load("reading-a.json"), load("reading-b.json")
    b = copy.deepcopy(b)
    for task_id, n in zip(predictor_ids(b), (60, 20)):
        b["pages"][task_id]["metrics"]["body"] = bump(b["pages"][task_id]["metrics"]["body"], n)
    return a, b


def test_per_replica_rates_add_up_and_the_gateway_is_not_counted_as_a_replica(readings):
    a, b = readings
    snap = top.snapshot(a, b)
    by_name = {s["name"]: s for s in snap["services"]}
    pred, gw = by_name["predictor"], by_name["gateway"]
    dts = {t: b["pages"][t]["metrics"]["t"] - a["pages"][t]["metrics"]["t"] for t in predictor_ids(b)}
    expect = {t: n / dts[t] for t, n in zip(predictor_ids(b), (60, 20))}
    assert {r["task"]: r["requests_per_s"] for r in pred["replicas"]} == pytest.approx(expect)
    assert pred["requests_per_s"] == pytest.approx(sum(expect.values()))
    assert 3 <= pred["p50_ms"] <= 5 and 3 <= pred["p99_ms"] <= 5
    assert pred["running"] == pred["desired"] == 2 and sum(pred["per_node"].values()) == 2
    # The gateway forwards /metrics to a replica; its page is not the gateway's own numbers.
    assert gw["requests_per_s"] is None and gw["p50_ms"] is None and "requests_per_s" not in gw["replicas"][0]
    assert all(r["gateway"]["status"] == "UP" for r in pred["replicas"])  # matched by address
    assert all(r["cpu_cores"] is not None and r["memory_bytes"] > 0 for r in pred["replicas"])


def test_a_page_that_cannot_be_read_blanks_its_replica_and_top_goes_on(readings):
    a, b = readings
    broken, fine = predictor_ids(b)
    b["pages"][broken]["metrics"]["body"] += "<html>502 Bad Gateway</html>\n"
    gw = next(t for t in b["pages"] if (b["pages"][t].get("stats") or {}).get("status") == 200)
    b["pages"][gw]["stats"] = {"status": 200, "t": b["time"], "body": "<html>not the stats</html>"}
    snap = top.snapshot(a, b)
    (pred,) = [s for s in snap["services"] if s["name"] == "predictor"]
    by_task = {r["task"]: r for r in pred["replicas"]}
    assert "requests_per_s" not in by_task[broken] and by_task[fine]["requests_per_s"] > 0
    assert pred["requests_per_s"] == by_task[fine]["requests_per_s"] and 3 <= pred["p99_ms"] <= 5
    assert snap["gateway"] == [] and all("gateway" not in r for r in pred["replicas"])


def test_nodes_add_up_their_replicas(readings):
    snap = top.snapshot(*readings)
    assert sum(n["tasks"] for n in snap["nodes"]) == 3
    assert {n["node"] for n in snap["nodes"]} == {"node1", "node2", "node3"}
    mem = sum(r["memory_bytes"] for s in snap["services"] for r in s["replicas"])
    assert sum(n["memory_bytes"] or 0 for n in snap["nodes"]) == mem


def test_first_reading_has_no_rates_but_renders(readings):
    snap = top.snapshot(None, readings[0])
    assert snap["interval_s"] is None
    assert all(r.get("requests_per_s") is None for s in snap["services"] for r in s["replicas"])
    json.dumps(snap)  # -o json can print it


def test_render_shows_every_replica_with_its_node(readings):
    from rich.console import Console
    console = Console(width=160, record=True, file=open(os.devnull, "w"))
    console.print(top.render(top.snapshot(*readings)))
    text = console.export_text()
    assert "predictor  2/2 running" in text and "req/s" in text
    assert text.count("node2") >= 2 and "UP 0 conn" in text


def test_rollout_shows_while_it_runs():
    from rich.console import Console
    a = load("reading-a.json")
    a["services"][1]["rollout"] = {"state": "updating", "message": "update in progress"}
    console = Console(width=200, record=True, file=open(os.devnull, "w"))
    console.print(top.render(top.snapshot(None, a)))
    assert "rollout: updating" in console.export_text()


def test_plain_task_and_network_from_recorded_task_json():
    tasks = load("tasks.json")
    assert topview.choose_network(tasks) == "ml_inference"
    plain = [topview.plain_task(t, "ml_inference") for t in tasks]
    assert all(p["ip"] and p["container_id"] and p["state"] == "running" for p in plain)
    assert topview.choose_network([]) is None
    assert topview.plain_task(tasks[0], "other")["ip"] is None


def test_autoscaler_state_shows_beside_its_service():
    """The autoscaled predictor's line says what `swarmml autoscale status` says: bounds, target, last change,
    why it holds; the gateway, without a policy, has none."""
    from rich.console import Console
    from test_autoscale_status import autoscaled, lease_with
    raw = [autoscaled(), autoscaled(name="ml_gateway", labels={})]
    raw[0]["ID"], raw[1]["ID"] = "predictor-id", "gateway-id"
    state = topview.autoscale(lease_with("in down-window until 00:17:40: 2 wanted"), raw, now=1005.0)
    assert list(state) == ["predictor-id"]
    a = load("reading-a.json")
    for s in a["services"]:
        s["autoscale"] = state.get("predictor-id") if s["name"] == "predictor" else None
    snap = top.snapshot(None, a)
    (pred,) = [s for s in snap["services"] if s["name"] == "predictor"]
    assert pred["autoscale"]["controller"] == "running" and pred["autoscale"]["policy"]["max"] == 6
    console = Console(width=200, record=True, file=open(os.devnull, "w"))
    console.print(top.render(snap))
    lines = [x for x in console.export_text().splitlines() if "autoscale" in x]
    assert lines == ["  autoscale 2-6 (target inflight 2): running, last change 00:16:00 2->3; "
                     "in down-window until 00:17:40: 2 wanted"]
    json.dumps(snap)  # top -o json prints it


def test_an_expired_lease_says_no_autoscaler_runs():
    from test_autoscale_status import autoscaled, lease_with
    state = topview.autoscale(lease_with("x", at=1000.0), [autoscaled()], now=2000.0)
    (a,) = state.values()
    assert a["controller"] == "stopped" and "no autoscaler runs now" in top.autoscale_line(a)
