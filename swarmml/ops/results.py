"""What the day-2 verbs return: typed results with the placement, the durations and what changed."""
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from swarmml.errors import RolloutFailed
from swarmml.ops.placement import Placement  # noqa: F401  (part of the results API)
from swarmml.ops.rollout import Batch  # noqa: F401  (part of the results API)


class Change(NamedTuple):
    """One field of one service that an operation changed (a tuple, so `s, f, old, new = change` works)."""

    service: str
    field: str
    old: Any
    new: Any


@dataclass
class Imbalance:
    """How unevenly a service's replicas are spread over the nodes that may run them.

    spread: how many replicas the fullest or emptiest eligible node is away
    from an even spread (each node holding floor(R/N) or ceil(R/N)); 0 is even.
    """

    service: str
    per_node: dict
    eligible: list
    spread: int

    def to_dict(self):
        return asdict(self)


@dataclass
class OpResult:
    verb: str = ""
    changes: list = field(default_factory=list)  # Change
    placements: list = field(default_factory=list)  # Placement after the operation, one per service
    duration_s: float = 0.0  # from the call to the end of the wait (or the submission, detached)
    timings: dict = field(default_factory=dict)  # phase -> seconds (submit_s, converge_s, ...)
    ok: bool = True
    problems: list = field(default_factory=list)  # one line each
    detached: bool = False

    @property
    def placement(self):
        """service -> {node: running replicas}."""
        return {p.service: dict(p.per_node) for p in self.placements}

    def to_json(self):
        out = {"verb": self.verb, "ok": self.ok, "duration_s": round(self.duration_s, 3),
               "timings": {k: round(v, 3) for k, v in self.timings.items()}, "detached": self.detached,
               "changes": [c._asdict() for c in self.changes],
               "placement": [p.to_dict() for p in self.placements], "problems": self.problems}
        out.update(self._extra_json())
        return out

    def _extra_json(self):
        return {}

    def raise_if_failed(self) -> None:
        """RolloutFailed when the operation did not reach its goal (the CLI's error and the API's)."""
        if not self.ok:
            raise RolloutFailed(" | ".join(self.problems) or f"{self.verb} failed", self)


@dataclass
class ScaleResult(OpResult):
    verb: str = "scale"


@dataclass
class UpdateResult(OpResult):
    verb: str = "update"
    batches: list = field(default_factory=list)  # Batch, in order
    rolled_back: bool = False  # Swarm rolled the update back by itself
    cause: str | None = None  # why it failed: a task's error, its healthcheck output or its last log line

    def _extra_json(self):
        return {"batches": [asdict(b) for b in self.batches], "rolled_back": self.rolled_back, "cause": self.cause}


@dataclass
class RollbackResult(OpResult):
    verb: str = "rollback"
    stack: str | None = None
    revision: int | None = None  # the stack revision redeployed (stack rollbacks)
    recorded: int | None = None  # the revision number the rollback itself was recorded as

    def _extra_json(self):
        return {"stack": self.stack, "revision": self.revision, "recorded": self.recorded}


@dataclass
class RebalanceResult(OpResult):
    verb: str = "rebalance"
    strategy: str = "scale"
    threshold: int = 1
    before: list = field(default_factory=list)  # Imbalance per service, measured first
    after: list = field(default_factory=list)  # Imbalance of the services that were moved
    moved: list = field(default_factory=list)  # services whose tasks were redistributed

    def _extra_json(self):
        return {"strategy": self.strategy, "threshold": self.threshold, "moved": self.moved,
                "before": [i.to_dict() for i in self.before], "after": [i.to_dict() for i in self.after]}
