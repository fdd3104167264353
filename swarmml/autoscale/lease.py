"""One autoscaler per swarm: a lease kept in the labels of a Swarm config. The decision is pure.

The config `swarmml-autoscaler-lease` carries who holds the lease and until
when. A controller takes it when it is free or expired and renews it each
tick. Every write sends the config's version as read, so when two
controllers race, the engine refuses the second ("update out of sequence"):
compare-and-swap on the swarm's own Raft store, with no other service to
run. The same labels carry the holder's status, for `swarmml autoscale status`.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

LEASE_NAME = "swarmml-autoscaler-lease"
HOLDER = "io.swarmml.autoscale.lease.holder"
EXPIRES = "io.swarmml.autoscale.lease.expires"
STATUS = "io.swarmml.autoscale.lease.status"
ROLE = "io.swarmml.role"
TTL_S = 15.0


@dataclass
class LeaseView:
    holder: str | None
    expires: float | None
    status: dict | None


def read(labels: dict | None) -> LeaseView:
    labels = labels or {}
    try:
        expires = float(labels[EXPIRES]) if EXPIRES in labels else None
    except ValueError:
        expires = None
    try:
        status = json.loads(labels[STATUS]) if STATUS in labels else None
    except ValueError:
        status = None
    return LeaseView(labels.get(HOLDER) or None, expires, status)


def may_take(labels: dict | None, me: str, now: float) -> tuple[bool, str]:
    """(whether `me` may write the lease now, why not)."""
    view = read(labels)
    if view.holder in (None, me) or view.expires is None or view.expires <= now:
        return True, ""
    until = time.strftime("%H:%M:%S", time.gmtime(view.expires))
    return False, f"the lease is held by {view.holder} until {until} ({view.expires - now:.0f} s)"


def labels_for(me: str, now: float, status: dict | None, ttl: float = TTL_S) -> dict[str, str]:
    out = {ROLE: "autoscaler-lease", HOLDER: me, EXPIRES: f"{now + ttl:.3f}"}
    if status is not None:
        out[STATUS] = json.dumps(status, separators=(",", ":"), sort_keys=True)
    return out
