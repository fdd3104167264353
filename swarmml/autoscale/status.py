"""What `swarmml autoscale status` shows: the services' policies, the controller's last look, why. Pure."""
from __future__ import annotations

from swarmml.autoscale import lease as leases
from swarmml.autoscale.decide import clock
from swarmml.stack.autoscale_policy import has_policy, parse
from swarmml.errors import UsageError
from swarmml.ops.placement import desired_replicas


def report(lease_labels: dict | None, services: list[dict], now: float, only: str | None = None) -> dict:
    """The lease's labels (None: no lease) + the engine's services -> the status, as JSON-ready data."""
    view = leases.read(lease_labels)
    if lease_labels is None:
        controller = {"state": "absent", "why": "no autoscaler has run on this swarm (swarmml autoscale install)"}
    elif view.expires is not None and view.expires > now:
        controller = {"state": "running", "holder": view.holder, "expires": view.expires,
                      "why": f"held by {view.holder} until {clock(view.expires)}"}
    else:
        at = clock(view.expires) if view.expires else "?"
        controller = {"state": "stopped", "holder": view.holder, "expires": view.expires,
                      "why": f"the lease of {view.holder} expired at {at}: no autoscaler runs now"}
    seen = (view.status or {}).get("services") or {}
    out = []
    for svc in sorted(services, key=lambda s: s["Spec"]["Name"]):
        spec = svc["Spec"]
        name = spec["Name"]
        if only and only != name:
            continue
        if not has_policy(spec.get("Labels")):
            continue
        row = {"service": name, "replicas": desired_replicas(spec), "policy": None, "error": None, "signal": None,
               "decision": None, "decisions": [], "why": None}
        try:
            p = parse(spec.get("Labels"), f"service {name}")
            row["policy"] = {"min": p.min, "max": p.max, "targets": p.targets, "up_window_s": p.up_window_s,
                             "down_window_s": p.down_window_s, "max_step": p.max_step}
        except UsageError as exc:
            row["error"] = str(exc)
        last = seen.get(name) or {}
        row["signal"] = last.get("signal")
        row["decision"] = last.get("decision")
        row["decisions"] = last.get("decisions") or []
        if row["error"]:
            row["why"] = row["error"]
        elif last.get("error"):
            row["why"] = last["error"]
        elif controller["state"] != "running":
            row["why"] = controller["why"]
        elif row["decision"]:
            row["why"] = row["decision"]["reason"]
        else:
            row["why"] = "not looked at yet"
        out.append(row)
    if only and not out:
        raise UsageError(f"service {only} has no io.swarmml.autoscale.* labels")
    return {"controller": controller, "services": out}


def rows(status: dict) -> list[dict]:
    """Table rows for people."""
    table = []
    for s in status["services"]:
        p = s["policy"] or {}
        sig = s["signal"] or {}
        targets = ", ".join(f"{k} {v:g}" for k, v in (p.get("targets") or {}).items())
        load = "" if sig.get("inflight") is None else f"{sig['inflight']:g} in flight"
        if sig.get("rps") is not None:
            load += f", {sig['rps']:g} req/s"
        if sig.get("unknown"):
            load += f", {len(sig['unknown'])} unknown"
        changes = [d for d in s["decisions"] if d.get("action") != "hold"]
        last = changes[-1] if changes else None
        table.append({"service": s["service"], "replicas": s["replicas"],
                      "min_max": f"{p['min']}-{p['max']}" if p else "-", "target": targets, "signal": load,
                      "last_change": f"{last['time']} {last['current']}->{last['desired']}" if last else "",
                      "why": s["why"]})
    return table
