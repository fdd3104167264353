"""Where autoscaling meets `swarmml deploy`: the replicas of an autoscaled service are the autoscaler's. Pure.

The stack file stays the source of truth for the policy (its labels), but
not for the replica count of an autoscaled service: a deploy keeps the count
the autoscaler chose, within the policy's new min and max, instead of
resetting it to `replicas:` (the HPA-versus-`kubectl apply` fight, avoided by
design). `replicas:` is the count a new service starts with (within min/max).
"""
from __future__ import annotations

from swarmml.stack.autoscale_policy import check_services
from swarmml.ops.placement import desired_replicas


def hold_replicas(desired: dict[str, dict], current: dict[str, dict]) -> list[str]:
    """Set each autoscaled desired spec's replicas (in place); returns notes on what was kept.

    desired: {full name: spec}; current: {full name: {"Spec": ...}} as the engine has them.
    Raises UsageError naming the label when a policy is bad (before anything is deployed).
    """
    notes = []
    for name, policy in check_services(desired).items():
        spec = desired[name]
        replicated = spec.setdefault("Mode", {}).setdefault("Replicated", {})
        wanted = replicated.get("Replicas", 1)
        have = current.get(name)
        running = desired_replicas(have["Spec"]) if have else None
        base = running if running is not None else wanted
        chosen = min(max(base, policy.min), policy.max)
        replicated["Replicas"] = chosen
        if running is not None and chosen != wanted:
            why = "the autoscaler's count" if chosen == running else f"within min {policy.min} / max {policy.max}"
            notes.append(f"{name}: autoscaled, keeping {chosen} replicas ({why}; the file says {wanted})")
        elif running is None and chosen != wanted:
            notes.append(f"{name}: autoscaled, starting with {chosen} replicas (min {policy.min}, max {policy.max})")
    return notes
