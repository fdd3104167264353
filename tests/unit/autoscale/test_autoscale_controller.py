"""The autoscaler's loop over engine-shaped JSON, with a fake engine and fake replicas: no daemon."""
import copy
from types import SimpleNamespace

import pytest
from ops_helpers import NODES, service, spec, task

from swarmml.autoscale import controller as ctl
from swarmml.autoscale import lease as leases
from swarmml.engine import configs

P = "io.swarmml.autoscale."
POLICY = {P + "min": "2", P + "max": "6", P + "target-inflight": "2", P + "up-window": "0s", P + "down-window": "10s"}


def metrics(count, seconds, inflight=0.0):
    return (f'swarmml_infer_in_flight{{model="iris-rf",version="1"}} {inflight}\n'
            f'swarmml_infer_request_seconds_count{{model="iris-rf",version="1"}} {count}\n'
            f'swarmml_infer_request_seconds_sum{{model="iris-rf",version="1"}} {seconds}\n')


def with_address(t, ip):
    t["NetworksAttachments"] = [
        {"Network": {"ID": "ing", "Spec": {"Name": "ingress", "Ingress": True}}, "Addresses": ["10.255.0.9/16"]},
        {"Network": {"ID": "net1", "Spec": {"Name": "ml_inference"}}, "Addresses": [f"{ip}/24"]}]
    return t


class FakeAPI:
    def __init__(self, services, tasks):
        self._services, self._tasks = services, tasks

    def services(self, filters=None):
        label = (filters or {}).get("label")
        return [copy.deepcopy(s) for s in self._services if not label or label in (s["Spec"].get("Labels") or {})]

    def inspect_service(self, name):
        return copy.deepcopy(next(s for s in self._services if name in (s["ID"], s["Spec"]["Name"])))

    def tasks(self, filters=None):
        return copy.deepcopy(self._tasks)

    def nodes(self):
        return copy.deepcopy(NODES)


class FakeClient:
    def __init__(self, services, tasks):
        self.api = FakeAPI(services, tasks)


class Leases:
    """An in-memory Swarm config with versions: writes at an old version are refused, like the engine does."""

    def __init__(self, monkeypatch):
        self.cfg = None
        monkeypatch.setattr(configs, "lease", lambda client, name: None if self.cfg is None else tuple(self.cfg))
        monkeypatch.setattr(configs, "create_lease", self.create)
        monkeypatch.setattr(configs, "write_lease", self.write)

    def create(self, client, name, labels):
        if self.cfg is not None:
            raise configs.LeaseLost("exists")
        self.cfg = ["cfg1", 1, dict(labels)]

    def write(self, client, cid, version, name, labels):
        if version != self.cfg[1]:
            raise configs.LeaseLost("update out of sequence")
        self.cfg = [cid, version + 1, dict(labels)]


class Clock:
    def __init__(self, t=1_700_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


def setup(monkeypatch, replicas=2, labels=POLICY, per_task=None):
    s = spec(replicas)
    s["Labels"].update(labels)
    svc = service(s)
    tasks = [with_address(task(f"n{i % 3 + 1}", i, tid=f"task{i}"), f"10.0.1.{i}") for i in range(1, replicas + 1)]
    client = FakeClient([svc], tasks)
    return SimpleNamespace(svc=svc, tasks=tasks, client=client, leases=Leases(monkeypatch), scaled=[])


def test_scales_up_on_in_flight_from_two_scrapes(monkeypatch):
    w = setup(monkeypatch)
    clock = Clock()
    counters = {"10.0.1.1": [0, 0.0], "10.0.1.2": [0, 0.0]}

    def fetch(url, timeout=1.0):
        ip = url.split("/")[2].split(":")[0]
        assert url.endswith(":8080/metrics")
        c, s = counters[ip]
        return metrics(c, s), None

    c = ctl.Controller(w.client, holder="me", clock_fn=clock, fetch=fetch,
                       scaler=lambda cl, name, n: w.scaled.append((name, n)))
    first = c.tick()["ml_predictor"]
    assert first.action == "hold" and first.reason.startswith("at min")  # gauges at 0 on the first look
    for ip in counters:  # 2 s later each replica did 8 request-seconds: 4 in flight on average
        counters[ip] = [200, 8.0]
    clock.t += 2
    d = c.tick()["ml_predictor"]
    assert (d.action, d.desired) == ("up", 4)
    assert w.scaled == [("ml_predictor", 4)]
    st = c.status["ml_predictor"]
    assert st.replicas == 4 and st.signal["inflight"] == 4.0 and st.signal["unknown"] == []
    assert leases.read(w.leases.cfg[2]).holder == "me"


def test_a_replica_that_does_not_answer_is_unknown_and_blocks_scale_down(monkeypatch):
    w = setup(monkeypatch, replicas=4)
    clock = Clock()

    def fetch(url, timeout=1.0):
        if "10.0.1.4" in url:
            return None, "http://10.0.1.4:8080/metrics: timed out"
        return metrics(0, 0.0), None

    c = ctl.Controller(w.client, holder="me", clock_fn=clock, fetch=fetch, scaler=lambda *a: w.scaled.append(a))
    for _ in range(10):
        d = c.tick()["ml_predictor"]
        clock.t += 2
    # 3 idle, 1 unknown (counted at target): (0+0+0+2)/4 = 0.5 per replica -> 1, held at min 2... and
    # the unknown one is named in the status.
    st = c.status["ml_predictor"]
    assert st.signal["unknown"] == ["ml_predictor.4"]
    assert "1 of 4 replicas unknown" in d.reason
    assert st.signal["per_replica"][3]["error"].endswith("timed out")


def test_no_scaling_during_a_rolling_update(monkeypatch):
    w = setup(monkeypatch)
    w.svc["UpdateStatus"] = {"State": "updating", "StartedAt": "2026-01-01T00:00:00Z"}
    c = ctl.Controller(w.client, holder="me", fetch=lambda url, timeout=1.0: (metrics(0, 0.0, inflight=50), None),
                       scaler=lambda *a: w.scaled.append(a))
    d = c.tick()["ml_predictor"]
    assert d.action == "hold" and d.reason.startswith("rolling update in progress (updating)") and not w.scaled


def test_pending_tasks_stop_the_ask_for_more(monkeypatch):
    w = setup(monkeypatch)
    w.tasks.append(task(None, 3, state="pending", err="no suitable node (insufficient resources on 3 nodes)"))
    c = ctl.Controller(w.client, holder="me", fetch=lambda url, timeout=1.0: (metrics(0, 0.0, inflight=50), None),
                       scaler=lambda *a: w.scaled.append(a))
    d = c.tick()["ml_predictor"]
    assert d.action == "hold" and not w.scaled
    assert d.reason.startswith("pending tasks: ml_predictor.3 pending: no suitable node (insufficient resources")


def test_one_controller_per_swarm(monkeypatch):
    w = setup(monkeypatch)
    clock = Clock()
    def busy(url, timeout=1.0):
        return metrics(0, 0.0, inflight=50), None
    a = ctl.Controller(w.client, holder="a", clock_fn=clock, fetch=busy, scaler=lambda cl, n, r: w.scaled.append("a"))
    b = ctl.Controller(w.client, holder="b", clock_fn=clock, fetch=busy, scaler=lambda cl, n, r: w.scaled.append("b"))
    a.tick()
    d = b.tick()["ml_predictor"]
    assert w.scaled == ["a"] and not b.holding
    assert d.reason.startswith("standby (the lease is held by a until")
    clock.t += leases.TTL_S + 1  # a stops renewing: b takes over once the lease expired
    b.tick()
    assert b.holding and w.scaled == ["a", "b"]
    a.tick()
    assert not a.holding


def test_a_lost_race_is_standby_not_an_error(monkeypatch):
    w = setup(monkeypatch)
    a = ctl.Controller(w.client, holder="a", fetch=lambda url, timeout=1.0: (metrics(0, 0.0), None),
                       scaler=lambda *x: None)
    a.tick()
    real_write = w.leases.write

    def racing_write(client_, cid, version, name, labels):
        w.leases.cfg[1] += 1  # someone wrote in between
        return real_write(client_, cid, version, name, labels)

    monkeypatch.setattr(configs, "write_lease", racing_write)
    a.tick()
    assert not a.holding and "out of sequence" in a.lease_note


def test_dry_run_takes_no_lease_and_scales_nothing(monkeypatch):
    w = setup(monkeypatch, labels={})
    c = ctl.Controller(w.client, only="ml_predictor", dry_run=True,
                       overrides={"min": 1, "max": 5, "target_inflight": 1.0},
                       fetch=lambda url, timeout=1.0: (metrics(0, 0.0, inflight=3), None),
                       scaler=lambda *a: w.scaled.append(a))
    d = c.tick()["ml_predictor"]
    assert (d.action, d.desired) == ("up", 5) and d.reason.startswith("dry run, would scale up to 5")
    assert not w.scaled and w.leases.cfg is None
    assert c.status["ml_predictor"].replicas == 2


def test_a_bad_policy_in_the_swarm_is_reported_not_fatal(monkeypatch):
    w = setup(monkeypatch, labels={**POLICY, P + "max": "1"})
    c = ctl.Controller(w.client, holder="me", fetch=lambda url, timeout=1.0: (metrics(0, 0.0), None),
                       scaler=lambda *a: None)
    assert c.tick() == {}
    assert c.status["ml_predictor"].error.startswith("service ml_predictor: label io.swarmml.autoscale.min")


def test_lease_labels_round_trip():
    labels = leases.labels_for("me", 100.0, {"services": {}})
    view = leases.read(labels)
    assert (view.holder, view.expires, view.status) == ("me", 115.0, {"services": {}})
    assert leases.may_take(labels, "me", 101.0) == (True, "")
    assert leases.may_take(labels, "other", 101.0)[0] is False
    assert leases.may_take(labels, "other", 116.0) == (True, "")
    assert leases.may_take({}, "x", 0) == (True, "")


@pytest.mark.parametrize("state,expected", [("updating", "updating"), ("rollback_started", "rolling back"),
                                            ("completed", None), (None, None), ("paused", "update paused")])
def test_update_state(state, expected):
    svc = service(spec(2), update_status={"State": state} if state else None)
    assert ctl.update_state(svc) == expected


def test_task_address_skips_the_ingress_network():
    assert ctl.task_address(with_address(task("n1", 1), "10.0.1.7")) == "10.0.1.7"
    assert ctl.task_address(task("n1", 1)) is None


def test_a_controller_that_stops_expires_its_lease_for_the_next_one(monkeypatch):
    w = setup(monkeypatch)
    clock = Clock()
    a = ctl.Controller(w.client, holder="a", clock_fn=clock, fetch=lambda url, timeout=1.0: (metrics(0, 0.0), None),
                       scaler=lambda *x: None)
    a.run(ticks=2, interval=0)
    view = leases.read(w.leases.cfg[2])
    assert view.holder == "a" and view.expires == clock.t and view.status["services"]["ml_predictor"]
    b = ctl.Controller(w.client, holder="b", clock_fn=clock, fetch=lambda url, timeout=1.0: (metrics(0, 0.0), None),
                       scaler=lambda *x: None)
    b.tick()
    assert b.holding


def test_with_a_gateway_label_the_gateways_statistics_count_the_requests_in_flight(monkeypatch):
    w = setup(monkeypatch, labels={**POLICY, P + "gateway": "gateway"})
    gw_spec = spec(1, name="ml_gateway")
    w.client.api._services.append(service(gw_spec, sid="gw1"))
    gw_task = with_address(task("n1", 1, tid="gwtask"), "10.0.1.99")
    tasks_of = {"svc1": w.tasks, "gw1": [gw_task]}
    w.client.api.tasks = lambda filters=None: copy.deepcopy(tasks_of[filters["service"][0]])
    csv = "# pxname,svname,qcur,scur\npredictor,replica1,0,30\npredictor,BACKEND,4,36\n"
    seen = []

    def fetch(url, timeout=1.0):
        seen.append(url)
        return (csv, None) if "10.0.1.99:8404/stats;csv" in url else (metrics(0, 0.0, inflight=1), None)

    c = ctl.Controller(w.client, holder="me", fetch=fetch, scaler=lambda cl, n, r: w.scaled.append(r))
    d = c.tick()["ml_predictor"]
    assert d.observed == {"inflight": 20.0}  # 40 in flight at the gateway over 2 replicas
    assert w.scaled == [6] and c.status["ml_predictor"].signal["gateway_inflight"] == 40.0
    csv = "<html>"
    d = c.tick()["ml_predictor"]
    assert "gateway ml_gateway: not HAProxy" in c.status["ml_predictor"].signal["gateway_inflight"]


def test_with_a_gateway_label_a_request_rate_target_reads_what_arrives_at_the_gateway(monkeypatch):
    w = setup(monkeypatch, labels={P + "min": "1", P + "max": "10", P + "target-rps": "10", P + "metric": "rps",
                                   P + "up-window": "0s", P + "gateway": "gateway"})
    w.client.api._services.append(service(spec(1, name="ml_gateway"), sid="gw1"))
    gw_task = with_address(task("n1", 1, tid="gwtask"), "10.0.1.99")
    tasks_of = {"svc1": w.tasks, "gw1": [gw_task]}
    w.client.api.tasks = lambda filters=None: copy.deepcopy(tasks_of[filters["service"][0]])
    received = {"n": 1000}
    clock = {"t": 100.0}

    def fetch(url, timeout=1.0):
        if "10.0.1.99:8404/stats;csv" in url:
            return f"# pxname,svname,qcur,scur,req_tot\npredictor,BACKEND,9,8,{received['n']}\n", None
        return metrics(0, 0.0, inflight=1), None

    c = ctl.Controller(w.client, holder="me", fetch=fetch, scaler=lambda cl, n, r: w.scaled.append(r),
                       clock_fn=lambda: clock["t"])
    c.tick()  # the first look: no rate yet
    assert "gateway_rps" not in c.status["ml_predictor"].signal
    received["n"], clock["t"] = 1100, 102.0  # 50 requests/s arrived in 2 s
    d = c.tick()["ml_predictor"]
    assert c.status["ml_predictor"].signal["gateway_rps"] == 50.0
    assert d.observed == {"rps": 25.0} and w.scaled == [5]  # 50/s at 10 per replica, from 2 running


def test_a_controller_told_to_stop_mid_tick_scales_nothing(monkeypatch):
    w = setup(monkeypatch)
    c = ctl.Controller(w.client, holder="me", fetch=lambda url, timeout=1.0: (metrics(0, 0.0, inflight=50), None),
                       scaler=lambda *a: w.scaled.append(a))
    c.stopping.set()
    d = c.tick()["ml_predictor"]
    assert not w.scaled and d.reason.startswith("stopping, would scale up")


def _decision(at, current, desired, reason):
    from swarmml.autoscale.decide import Decision
    return Decision(at, current, desired, desired, "stable" if desired != current else "hold", reason)


def test_the_log_shows_each_change_each_new_reason_and_a_hold_every_heartbeat():
    from swarmml.autoscale.controller import DecisionLog
    log = DecisionLog(every_s=30)
    hold = _decision(0, 2, 2, "at target: inflight 2/2 per replica (within 10%)")
    assert log.lines({"ml_predictor": hold}, {}, None, 0) == [
        "00:00:00 ml_predictor hold 2        at target: inflight 2/2 per replica (within 10%)"]
    # the same hold, ticks later: quiet until the heartbeat, then the same words again
    assert log.lines({"ml_predictor": _decision(2, 2, 2, "at target: inflight 2.1/2 per replica")}, {}, None, 2) == []
    assert len(log.lines({"ml_predictor": hold}, {}, None, 31)) == 1
    # a change is always shown, and so is a new reason to hold
    up = _decision(33, 2, 6, "scale up to 6: inflight 7.5/2 per replica")
    assert log.lines({"ml_predictor": up}, {}, None, 33) == [
        "00:00:33 ml_predictor up   2 -> 6   scale up to 6: inflight 7.5/2 per replica"]
    window = _decision(35, 6, 6, "in down-window until 00:01:35: 2 wanted, inflight 0.5/2 per replica")
    assert len(log.lines({"ml_predictor": window}, {}, None, 35)) == 1
    assert log.lines({"ml_predictor": window}, {}, None, 37) == []
    # errors and standby when they change, and again every heartbeat, never every tick
    assert log.lines({}, {"ml_other": "bad label"}, "held by b until 00:01:00", 40) == [
        "00:00:40 ml_other error bad label", "00:00:40 standby: held by b until 00:01:00"]
    assert log.lines({}, {"ml_other": "bad label"}, "held by b until 00:01:00", 42) == []
    # nothing to scale says so, once per heartbeat
    fresh = DecisionLog(every_s=30)
    assert fresh.lines({}, {}, None, 0) == [
        "00:00:00 no service carries io.swarmml.autoscale.min: nothing to scale"]
    assert fresh.lines({}, {}, None, 2) == []


def test_install_waits_for_the_running_task_to_hold_the_lease_and_look():
    from swarmml.autoscale import lease as leases
    from swarmml.autoscale.install import first_look
    me = "swarmml-autoscaler.1.abc"
    assert first_look(None, {me}) == (False, "no lease taken yet")
    old = leases.labels_for("swarmml-autoscaler.1.old", 100.0, None)
    assert first_look(old, {me}) == (False, "the lease is held by swarmml-autoscaler.1.old")
    assert first_look(leases.labels_for(me, 100.0, None), {me}) == (
        False, f"{me} holds the lease; its first look is on its way")
    looked = leases.labels_for(me, 100.0, {"services": {"ml_predictor": {}}})
    assert first_look(looked, {me}) == (True, f"{me} looked at 1 service(s)")
