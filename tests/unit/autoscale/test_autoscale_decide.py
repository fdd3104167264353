"""The autoscaling decision as a pure function of observations and policy: no daemon, no clock."""
import pytest

from swarmml.stack import autoscale_policy as pol
from swarmml.autoscale.decide import Observation, State, decide, recommend
from swarmml.autoscale.signals import ReplicaSignal, Signal

P = pol.PREFIX
T0 = 1_700_000_000.0  # 22:13:20 UTC


def policy(**kw):
    base = {"min": "2", "max": "10", "target-inflight": "4", "up-window": "6s", "down-window": "60s"}
    base.update({k.replace("_", "-"): str(v) for k, v in kw.items()})
    return pol.parse({P + k: v for k, v in base.items()})


def load(*per_replica, unknown=0):
    reps = [ReplicaSignal(f"svc.{i + 1}", True, in_flight=v) for i, v in enumerate(per_replica)]
    reps += [ReplicaSignal(f"svc.{len(per_replica) + i + 1}", False, error="connection refused")
             for i in range(unknown)]
    return Signal(reps)


def obs(t, replicas, signal, **kw):
    return Observation(T0 + t, replicas, signal, **kw)


class Run:
    """Feed a policy ticks and apply what it decides, as the controller does."""

    def __init__(self, p, replicas):
        self.p, self.state, self.replicas, self.log = p, State(), replicas, []

    def tick(self, t, per_replica_total, **kw):
        n = self.replicas
        d = decide(self.p, self.state, obs(t, n, load(*([per_replica_total / n] * n)), **kw))
        self.log.append(d)
        self.replicas = d.desired
        return d


def test_desired_is_ceil_of_current_times_observed_over_target():
    p = policy(**{"up-window": "0s"})
    d = decide(p, State(), obs(0, 3, load(6, 6, 7)))  # mean 6.33 / 4 * 3 = 4.75 -> 5
    assert (d.recommended, d.desired, d.action) == (5, 5, "up")
    assert d.reason.startswith("scale up to 5: inflight 6.333/4 per replica")


def test_within_tolerance_nothing_changes():
    p = policy(**{"up-window": "0s"})
    for mean in (3.7, 4.0, 4.39):
        d = decide(p, State(), obs(0, 4, load(mean, mean, mean, mean)))
        assert (d.recommended, d.action) == (4, "hold"), mean
        assert d.reason.startswith("at target")
    assert decide(p, State(), obs(0, 4, load(4.5, 4.5, 4.5, 4.5))).desired == 5


def test_unknown_replicas_never_count_as_idle():
    p = policy(**{"up-window": "0s"})
    # Known ones at 8 (2x target); the 2 unknown count like them (too busy to answer is not idle): 8.
    d = decide(p, State(), obs(0, 4, load(8, 8, unknown=2)))
    assert d.desired == 8 and "2 of 4 replicas unknown" in d.reason
    # Known ones idle; unknown count as at target: (0 + 0 + 4 + 4) / 4 = 2 per replica -> 2, not 1.
    s = State()
    d = decide(policy(**{"down-window": "0s"}), s, obs(0, 4, load(0, 0, unknown=2)))
    assert d.recommended == 2
    # All unknown: no signal, no change (never read as idle).
    d = decide(p, State(), obs(0, 4, load(unknown=4)))
    assert (d.desired, d.recommended) == (4, None)
    assert d.reason.startswith("no signal: 0 of 4 replicas") and "connection refused" in d.reason


def test_no_signal_still_holds_min_and_max():
    p = policy()
    assert decide(p, State(), obs(0, 1, load(unknown=1))).desired == 2
    d = decide(p, State(), obs(0, 12, load(unknown=12)))
    assert d.desired == 10 and d.reason.startswith("above max (10)")


def test_up_window_needs_the_load_to_last():
    r = Run(policy(), 2)
    assert r.tick(0, 2 * 4).action == "hold"
    d = r.tick(2, 2 * 6)  # asks for 3, but 2 was recommended 2 s ago
    assert (d.recommended, d.desired) == (3, 2)
    assert d.reason.startswith("in up-window until 22:13:26")
    r.tick(4, 2 * 6)
    assert r.tick(6, 2 * 6).desired == 2  # the 0 s recommendation is still in the 6 s window
    assert r.tick(8, 2 * 6).desired == 3


def test_a_burst_skips_the_up_window():
    r = Run(policy(), 2)
    r.tick(0, 2 * 4)
    d = r.tick(2, 2 * 12)  # 6 wanted: 3x the current 2
    assert (d.desired, d.mode) == (6, "panic")
    assert "burst" in d.reason


def test_down_window_uses_the_highest_recommendation_and_says_until_when():
    r = Run(policy(), 2)
    r.tick(0, 2 * 4)
    assert r.tick(2, 8 * 4).desired == 8  # burst to 8
    for t in range(4, 62, 2):
        d = r.tick(t, 8)  # load back to 8 in flight in total: 2 replicas would do
        assert d.desired == 8, t
    assert d.reason.startswith("in down-window until 22:14:22")  # T0 + 2 s + 60 s
    assert r.tick(62, 8).desired == 8  # 22:14:22 itself is still in the window
    d = r.tick(64, 8)
    assert (d.action, d.desired) == ("down", 2)


def test_max_step_and_max_hold():
    r = Run(policy(**{"max-step": "2"}), 2)
    d = r.tick(0, 2 * 40)
    assert d.desired == 4 and "max-step 2; 20 wanted" in d.reason
    d = r.tick(2, 4 * 40)
    assert d.desired == 6
    assert r.tick(4, 6 * 40).desired == 8
    d = r.tick(6, 8 * 40)
    assert d.desired == 10 and d.reason.startswith("scale up to 10") and "max-step 2" in d.reason
    d = r.tick(8, 10 * 40)
    assert d.action == "hold" and d.reason.startswith("at max (10)")


def test_min_is_held_at_the_bottom():
    r = Run(policy(**{"down-window": "0s"}), 3)
    d = r.tick(0, 0.0)
    assert d.desired == 2
    d = r.tick(2, 0.0)
    assert d.action == "hold" and d.reason.startswith("at min (2)")
    r = Run(policy(), 1)  # below min whatever the load says
    d = r.tick(0, 4.0)
    assert d.desired == 2 and "below min (2)" in d.reason
    r = Run(policy(max=3, **{"up-window": "0s"}), 2)
    d = r.tick(0, 40.0)
    assert d.desired == 3 and "(at max (3): 10 wanted)" in d.reason


def test_no_scaling_while_a_rolling_update_runs():
    d = decide(policy(), State(), obs(0, 2, load(40, 40), updating="updating"))
    assert (d.desired, d.action) == (2, "hold")
    assert d.reason.startswith("rolling update in progress (updating)")


def test_no_more_replicas_while_tasks_wait_for_a_node_but_scale_down_still_goes():
    why = "ml_predictor.5 pending: no suitable node (insufficient resources on 3 nodes)"
    d = decide(policy(), State(), obs(0, 4, load(40, 40, 40, 40), pending=[why]))
    assert d.desired == 4
    assert d.reason == f"pending tasks: {why}; not asking for 10 until they run"
    d = decide(policy(**{"down-window": "0s"}), State(), obs(0, 4, load(0, 0, 0, 0), pending=[why]))
    assert d.desired == 2


def test_step_profile_scales_up_fast_down_once_and_does_not_flap():
    """20 -> 150 -> 20 req/s at ~25 ms each: 0.5 -> 3.75 -> 0.5 in flight in total, target 0.5 per replica."""
    r = Run(policy(min=1, max=8, **{"target-inflight": "0.5"}), 1)
    noisy = [1.0, 1.1, 0.9, 1.05, 0.95]
    changes = []
    for t in range(0, 300, 2):
        total = (0.5 if t < 60 or t >= 180 else 3.75) * noisy[(t // 2) % 5]
        d = r.tick(t, total)
        if d.action != "hold":
            changes.append((t, d.action, d.desired))
    ups = [c for c in changes if c[1] == "up"]
    downs = [c for c in changes if c[1] == "down"]
    assert ups and ups[0][0] <= 62 and max(c[2] for c in ups) >= 8  # at the step, fast
    assert downs and downs[0][0] >= 180 + 58  # only after the down-window
    assert len(changes) <= 4, changes


def test_the_metric_that_asks_for_most_wins():
    p = pol.parse({P + "min": "1", P + "max": "20", P + "target-inflight": "4", P + "target-p95-ms": "100",
                   P + "up-window": "0"})
    sig = Signal([ReplicaSignal("a", True, in_flight=4.0, p95_ms=300.0), ReplicaSignal("b", True, 4.0, None, 300.0)])
    wanted, observed, _ = recommend(p, sig, 2)
    assert wanted == 6 and observed == {"inflight": 4.0, "p95-ms": 300.0}


def test_a_prometheus_query_is_a_total_for_the_service():
    p = pol.parse({P + "min": "1", P + "max": "20", P + "metric": "query", P + "target": "10", P + "query": "x",
                   P + "metrics-url": "http://prom:9090", P + "up-window": "0"})
    assert decide(p, State(), obs(0, 2, Signal(load(0, 0).replicas, query_value=55.0))).desired == 6
    d = decide(p, State(), obs(0, 2, Signal(load(0, 0).replicas, query_error="timed out")))
    assert d.action == "hold" and d.reason == "no signal: query: timed out"


def test_history_keeps_changes_and_new_reasons_not_every_tick():
    r = Run(policy(), 2)
    for t in range(0, 20, 2):
        r.tick(t, 8.0)
    assert len(r.state.decisions) == 1
    r.tick(20, 80.0)
    assert [d.action for d in r.state.decisions] == ["hold", "up"]
    assert r.state.last_change_at == T0 + 20
    assert r.state.decisions[-1].to_json()["time"] == "22:13:40"


@pytest.mark.parametrize("replicas", [1, 2, 5])
def test_idle_service_goes_to_min_after_the_window(replicas):
    r = Run(policy(min=1, **{"down-window": "10s"}), replicas)
    for t in range(0, 30, 2):
        r.tick(t, 0.0)
    assert r.replicas == 1


def test_the_gateways_count_is_the_total_in_flight_when_given():
    """A one-at-a-time replica shows ~1 in flight in the model service while its queue grows in its socket."""
    p = policy(**{"up-window": "0s"})
    sig = Signal(load(1.0, 1.0).replicas, gateway_inflight=40.0)
    d = decide(p, State(), obs(0, 2, sig))
    assert (d.recommended, d.desired) == (10, 10) and d.observed == {"inflight": 20.0}
    sig = Signal(load(0.1, 0.1).replicas, gateway_inflight=9.0)
    assert decide(p, State(), obs(0, 2, sig)).desired == 3  # 9 / 4 -> 3 (8.2 would be within tolerance)
    # No gateway answer: the replicas' own counts.
    assert decide(p, State(), obs(0, 2, Signal(load(8, 8).replicas, gateway_error="timed out"))).desired == 4


def test_gateway_label():
    p = pol.parse({P + "min": "1", P + "max": "3", P + "target-inflight": "2", P + "gateway": "gateway:9000"})
    assert (p.gateway, p.gateway_port) == ("gateway", 9000)
    with pytest.raises(pol.UsageError, match="label io.swarmml.autoscale.gateway: expected SERVICE"):
        pol.parse({P + "min": "1", P + "max": "3", P + "target-inflight": "2", P + "gateway": "gw:http"})


def test_at_max_is_the_reason_even_inside_the_up_window():
    r = Run(policy(**{"up-window": "10s"}), 10)
    r.tick(0, 10 * 4)
    d = r.tick(2, 10 * 8)
    assert d.reason.startswith("at max (10): 20 wanted")


def test_no_more_replicas_while_the_last_scale_up_still_starts():
    p = policy(**{"up-window": "0s"})
    s = State()
    assert decide(p, s, obs(0, 2, load(8, 8))).desired == 4
    d = decide(p, s, obs(2, 4, load(8, 8, 8), starting=1))
    assert d.desired == 4 and d.reason == "scale-up in progress: 1 replicas starting; not asking for 6 until they run"
    d = decide(p, State(), obs(2, 4, load(8, 8)))
    assert d.desired == 4 and d.reason.startswith("4 wanted from 2 running of 4 (the others are on their way)")
    assert decide(p, s, obs(4, 4, load(8, 8, 8, 8))).desired == 8  # started: go on
    # A replica that never starts holds for the grace period only.
    assert decide(p, s, obs(200, 8, load(*[8] * 8), starting=1)).desired == 10


def test_replicas_that_do_not_run_hold_a_scale_down():
    """Seen: 6 asked for, none passing its health check, the gateway failing requests fast (0 in flight)."""
    p = policy(**{"down-window": "0s"})
    d = decide(p, State(), obs(0, 6, Signal([], gateway_inflight=0.0)))
    assert d.desired == 6 and d.reason.startswith("no signal: no replica runs")
    d = decide(p, State(), obs(0, 6, Signal(load(0.0).replicas, gateway_inflight=0.0)))
    assert d.desired == 5  # one idle replica may go; the 5 that don't run count as at target
    d = decide(p, State(), obs(0, 6, Signal(load(0.0, 0.0, 0.0, 0.0).replicas, gateway_inflight=12.0)))
    assert d.desired == 3 + 2  # 12 in flight / 4 for the 4 that run, + the 2 that don't, at target


def test_a_controller_that_just_started_waits_a_down_window_before_scaling_down():
    """Seen: a deploy restarted the controller, whose first look at 6 idle replicas scaled them down at once."""
    r = Run(policy(), 6)
    d = r.tick(0, 0.0)
    assert d.desired == 6 and d.reason.startswith("in down-window until 22:14:20")
    assert r.tick(58, 0.0).desired == 6
    assert r.tick(60, 0.0).desired == 2


def test_a_new_replica_without_a_rate_yet_counts_as_serving_nothing():
    # 2 old replicas at 20/s each, 2 new ones on their first look (answered, no rate yet): the load is
    # 40/s, which 4 replicas at 10/s carry. Counting the new ones like the old would ask for 8.
    p = pol.parse({P + "min": "2", P + "max": "10", P + "target-rps": "10", P + "metric": "rps",
                   P + "up-window": "0s"})
    reps = [ReplicaSignal("svc.1", True, in_flight=1, rps=20.0), ReplicaSignal("svc.2", True, in_flight=1, rps=20.0),
            ReplicaSignal("svc.3", True, in_flight=0), ReplicaSignal("svc.4", True, in_flight=0)]
    d = decide(p, State(), obs(0, 4, Signal(reps)))
    assert (d.recommended, d.action) == (4, "hold"), d.reason
    # A replica that did not answer at all is still no evidence of idleness: it counts like the others.
    reps[3] = ReplicaSignal("svc.4", False, error="timed out")
    assert decide(p, State(), obs(0, 4, Signal(reps))).recommended == 6  # 40/3 per replica x 4 / 10


def test_the_gateways_arrival_rate_is_the_load_when_the_replicas_are_overloaded():
    # 2 replicas finish 15/s each (their capacity) while 40/s arrive and queue at the gateway: the load
    # needs 4, not the 3 that the finished rate says (the step-load run that scaled down under load).
    p = pol.parse({P + "min": "2", P + "max": "10", P + "target-rps": "10", P + "metric": "rps",
                   P + "up-window": "0s", P + "down-window": "0s"})
    reps = [ReplicaSignal("svc.1", True, in_flight=4, rps=15.0), ReplicaSignal("svc.2", True, in_flight=4, rps=15.0)]
    assert decide(p, State(), obs(0, 2, Signal(reps))).recommended == 3
    d = decide(p, State(), obs(0, 2, Signal(reps, gateway_rps=40.0)))
    assert (d.recommended, d.desired) == (4, 4) and d.observed == {"rps": 20.0}
    # 4 running and the same 40/s arriving: at target, not a scale-down
    reps4 = reps + [ReplicaSignal("svc.3", True, in_flight=1, rps=5.0), ReplicaSignal("svc.4", True, rps=5.0)]
    assert decide(p, State(), obs(0, 4, Signal(reps4, gateway_rps=40.0))).action == "hold"
