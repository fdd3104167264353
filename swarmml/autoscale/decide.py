"""The autoscaling decision: observations and a policy in, a replica count and its reason out. Pure.

One call per tick and service:

1. Recommendation: for each metric, desired = ceil(replicas x observed / target),
   where observed is the mean over the replicas that answered; no change
   while observed is within the tolerance (10%) of the target. Replicas
   that could not be scraped are unknown, not idle: when the known ones ask
   for more, the unknown count like them (a replica too busy to answer in
   time is not idle; Kubernetes counts missing pods as 0 here, which held a
   drowning service back in our runs); when they ask for less, the unknown
   count as at target, so a replica we can't see is never scaled away as
   idle. The metric that asks for the most replicas wins.
2. Windows: every recommendation is kept with its time. Scaling up goes
   only as high as the lowest recommendation of the up-window (the load
   must last), scaling down only as low as the highest of the down-window
   (a dip must last).
3. Burst: a recommendation of panic-threshold (2x) the current replicas or
   more skips the up-window, and goes straight to what it asks.
4. Limits, in this order: max-step, min and max (always), then no more
   replicas while tasks wait for a node (they would only wait too), nor
   while the replicas of the last scale-up still start (up to 90 s).
   Nothing changes while a rolling update of the service runs.

The reason is always recorded: "at max (10)", "in down-window until
12:03:10", "pending tasks: no suitable node (insufficient resources on 3 nodes)".
"""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict, dataclass, field

from swarmml.stack.autoscale_policy import Policy
from swarmml.autoscale.signals import Signal

HISTORY = 20  # decisions kept per service, for status
# After a scale-up, replicas that are still starting hold further scale-ups this long at most: they are
# capacity on its way, and starting more only takes CPU from them (seen: 8 at once on 2 busy cores never got
# healthy). A replica that never starts can't hold the service back for longer than this.
STARTUP_GRACE_S = 90.0


@dataclass
class Observation:
    """What the controller saw of one service at one tick."""

    at: float  # epoch seconds
    replicas: int  # the replicas the service's spec asks for now
    signal: Signal
    updating: str | None = None  # the state of a rolling update that runs, e.g. "updating"
    pending: list[str] = field(default_factory=list)  # tasks that wait for a node, with the scheduler's reason
    starting: int = 0  # tasks placed but not yet running (pulling, starting, health check not yet passed)


@dataclass
class Decision:
    at: float
    current: int
    desired: int  # what the service should run; == current: hold
    recommended: int | None  # before windows and limits; None without a signal
    mode: str  # stable | panic | hold
    reason: str
    observed: dict = field(default_factory=dict)  # metric -> mean per known replica
    until: float | None = None  # when a window stops holding the count

    @property
    def action(self) -> str:
        return "up" if self.desired > self.current else "down" if self.desired < self.current else "hold"

    def to_json(self) -> dict:
        out = asdict(self)
        out["action"] = self.action
        out["time"] = clock(self.at)
        return out


@dataclass
class State:
    """What a service's decisions remember between ticks."""

    recommendations: deque = field(default_factory=deque)  # (at, replicas)
    decisions: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    last_change_at: float | None = None
    first_at: float | None = None  # the first look: no scale-down before a whole down-window was seen

    def remember(self, decision: Decision) -> None:
        """Keep decisions that change something or say something new."""
        last = self.decisions[-1] if self.decisions else None
        if last is None or decision.action != "hold" or _gist(last.reason) != _gist(decision.reason) \
                or last.desired != decision.desired:
            self.decisions.append(decision)
        if decision.action != "hold":
            self.last_change_at = decision.at


def clock(at: float) -> str:
    """Epoch seconds -> 'HH:MM:SS' (UTC), as reasons show times."""
    return time.strftime("%H:%M:%S", time.gmtime(at))


def _gist(reason: str) -> str:
    return " ".join(reason.split()[:2])


def recommend(policy: Policy, signal: Signal, current: int) -> tuple[int | None, dict, str | None]:
    """(replicas the load asks for, the observed mean per metric, why there is none) for one tick."""
    n = len(signal.replicas)
    observed: dict = {}
    wanted: list[int] = []
    problems: list[str] = []
    for metric, target in policy.targets.items():
        if metric == "query":
            if signal.query_value is None:
                problems.append(f"query: {signal.query_error or 'no value'}")
                continue
            observed[metric] = round(signal.query_value, 3)
            wanted.append(_replicas_for_total(signal.query_value, target, max(current, 1), policy.tolerance))
            continue
        total = {"inflight": signal.gateway_inflight, "rps": signal.gateway_rps}.get(metric)
        if total is not None and n:
            # The gateway's count for the whole service, spread over the replicas that run (Knative's total /
            # target). For a rate it is what arrives, queued requests included: the replicas' own rates are
            # what they finish, which under overload is their capacity, not the load (seen: 2 drowning
            # replicas read as 15/s each while 40/s arrived, and a scale-down to 3 came while the load stood).
            observed[metric] = round(total / n, 3)
            wanted.append(_replicas_for_total(total, target, n, policy.tolerance))
            continue
        values = signal.values(metric)
        if not values:
            continue
        if metric == "rps":
            # A replica seen for the first time answered, but has no rate yet: it has just started and
            # served next to nothing, so it counts as 0, not like the busy ones (which asked for 8 replicas
            # where 4 carried the load, each scale-up's new replicas inflating the next).
            values = values + [0.0] * sum(1 for r in signal.known if r.rps is None)
        mean = sum(values) / len(values)
        observed[metric] = round(mean, 3)
        wanted.append(_replicas_for(mean, target, len(values), n, policy.tolerance))
    if wanted:
        best = max(wanted)
        missing = current - n
        if best < current and missing > 0:
            # Replicas the spec asks for that don't run (starting, or stopped by a failing health check) count
            # as at target against scaling down: a fleet that is not all there is no reason to shrink it.
            best = min(current, best + missing)
        return best, observed, None
    if problems:
        return None, observed, "no signal: " + "; ".join(problems)
    if n == 0:
        return None, observed, "no signal: no replica runs"
    errors = sorted({r.error for r in signal.unknown if r.error})
    detail = f" ({errors[0]})" if errors else ""
    return None, observed, (f"no signal: {len(signal.known)} of {n} replicas answered with the metrics"
                            f"{' (first look: rates need two)' if signal.known else detail}")


def _replicas_for_total(total: float, target: float, base: int, tolerance: float) -> int:
    """ceil(total / target) for a total over the service, unchanged while total per replica is within tolerance."""
    return base if abs(total / (target * base) - 1) <= tolerance else math.ceil(total / target)


def _replicas_for(mean: float, target: float, known: int, total: int, tolerance: float) -> int:
    """ceil(total x mean / target) with HPA's rule for replicas that did not answer."""
    ratio = mean / target
    if known == total:
        return total if abs(ratio - 1) <= tolerance else math.ceil(total * ratio)
    if abs(ratio - 1) <= tolerance:
        return total
    if ratio > 1:
        # Asking for more: the unknown count like the known (a replica too busy to answer its /metrics in
        # time is no evidence of idleness, and counting it as 0 would hold back a service that is drowning).
        return math.ceil(total * ratio)
    # Asking for less: the unknown count as at target, so a replica we can't see is never scaled away idle.
    adjusted = (mean * known + target * (total - known)) / (total * target)
    if abs(adjusted - 1) <= tolerance:
        return total
    return math.ceil(total * adjusted)


def decide(policy: Policy, state: State, obs: Observation) -> Decision:
    """The decision for this tick; state keeps the window of recommendations (and is updated here)."""
    current = obs.replicas
    unknown = len(obs.signal.unknown)
    note = f"; {unknown} of {len(obs.signal.replicas)} replicas unknown" if unknown else ""

    if obs.updating:
        d = Decision(obs.at, current, current, None, "hold",
                     f"rolling update in progress ({obs.updating}): not scaling until it ends")
        state.remember(d)
        return d

    wanted, observed, no_signal = recommend(policy, obs.signal, current)
    if wanted is None:
        desired = min(max(current, policy.min), policy.max)
        reason = no_signal or "no signal"
        if desired != current:
            reason = f"{'below min' if desired > current else 'above max'} ({desired}); {reason}"
        d = Decision(obs.at, current, desired, None, "hold" if desired == current else "stable", reason, observed)
        return _finish(policy, state, d, obs)

    if state.first_at is None:
        state.first_at = obs.at
    recs = state.recommendations
    recs.append((obs.at, wanted))
    horizon = obs.at - max(policy.up_window_s, policy.down_window_s)
    while recs and recs[0][0] < horizon:
        recs.popleft()
    in_up = [r for t, r in recs if t >= obs.at - policy.up_window_s]
    in_down = [r for t, r in recs if t >= obs.at - policy.down_window_s]
    panic = current > 0 and wanted >= policy.panic_threshold * current
    up_rec = wanted if panic else min(in_up)
    down_rec = max(in_down)
    # A controller that just started (or restarted) has not seen the load of a whole down-window yet.
    young = obs.at - state.first_at < policy.down_window_s
    if young:
        down_rec = max(down_rec, current)

    desired = current
    desired = max(desired, up_rec)
    desired = min(desired, down_rec)
    until = None
    if wanted > current and desired == current:
        # The lowest recommendation of the up-window held us: it ages out at its time + the window.
        until = max(t for t, r in recs if r <= current and t >= obs.at - policy.up_window_s) + policy.up_window_s
    if wanted < current and desired == current:
        held = [t for t, r in recs if r >= current and t >= obs.at - policy.down_window_s]
        until = max(held) + policy.down_window_s if held else state.first_at + policy.down_window_s

    stepped = False
    if policy.max_step is not None and abs(desired - current) > policy.max_step:
        desired = current + policy.max_step * (1 if desired > current else -1)
        stepped = True
    bounded = min(max(desired, policy.min), policy.max)

    load = ", ".join(f"{m} {v:g}/{policy.targets[m]:g}" for m, v in observed.items()) + " per replica"
    mode = "panic" if panic and bounded > current else "stable"
    limit = ""
    if bounded < desired:
        limit = f"at max ({policy.max}): {wanted} wanted"
    elif bounded > desired:
        limit = f"at min ({policy.min})" if bounded == current else f"below min ({policy.min})"
    if bounded != current:
        reason = f"scale {'up' if bounded > current else 'down'} to {bounded}: {load}"
        if limit:
            reason += f" ({limit})"
        elif stepped:
            reason += f" (max-step {policy.max_step}; {wanted} wanted)"
        if panic and bounded > current:
            reason += f" (burst: {wanted} wanted, {policy.panic_threshold:g}x or more: up-window skipped)"
    elif limit:
        reason = f"{limit}, {load}"
    elif wanted > current >= policy.max:
        reason = f"at max ({policy.max}): {wanted} wanted, {load}"
    elif wanted < current <= policy.min:
        reason = f"at min ({policy.min}), {load}"
    elif until is not None:
        reason = f"in {'up' if wanted > current else 'down'}-window until {clock(until)}: {wanted} wanted, {load}"
    elif len(obs.signal.replicas) < current:
        reason = (f"{wanted} wanted from {len(obs.signal.replicas)} running of {current} "
                  f"(the others are on their way): {load}")
    else:
        reason = f"at target: {load} (within {policy.tolerance:.0%})"
    d = Decision(obs.at, current, bounded, wanted, mode if bounded != current else "hold", reason + note, observed,
                 until if bounded == current else None)
    return _finish(policy, state, d, obs)


def _finish(policy: Policy, state: State, d: Decision, obs: Observation) -> Decision:
    """No more replicas while tasks wait for a node, or while the last scale-up's still start; remember."""
    if d.desired > d.current and obs.pending:
        d.reason = f"pending tasks: {obs.pending[0]}; not asking for {d.desired} until they run"
        d.desired, d.mode, d.until = d.current, "hold", None
    elif d.desired > d.current and obs.starting and state.last_change_at is not None \
            and obs.at - state.last_change_at < STARTUP_GRACE_S:
        d.reason = f"scale-up in progress: {obs.starting} replicas starting; not asking for {d.desired} until they run"
        d.desired, d.mode, d.until = d.current, "hold", None
    state.remember(d)
    return d
