"""Day-2 operations on running services: scale, update, rollback, rebalance.

Each verb checks all its input before changing anything, changes the
service through the engine, waits for Swarm to carry the change out (unless
detached) and returns a typed result: what changed, where the replicas run,
how long it took.

    from swarmml import ops
    r = ops.scale(client, {"predictor": 10}, stack="ml")
    r.placement          # {"ml_predictor": {"node1": 4, "node2": 3, "node3": 3}}
    r.duration_s, r.changes
"""
from swarmml.ops import history
from swarmml.ops.rebalance import measure, rebalance
from swarmml.ops.results import (Batch, Change, Imbalance, OpResult, Placement, RebalanceResult, RollbackResult,
                                 ScaleResult, UpdateResult)
from swarmml.ops.rollback import list_revisions, rollback, rollback_stack
from swarmml.ops.scale import parse_replicas, parse_targets, scale
from swarmml.ops.update import update

__all__ = ["scale", "update", "rollback", "rollback_stack", "rebalance", "list_revisions", "measure",
           "parse_targets", "parse_replicas", "history", "Change", "Placement", "Batch", "Imbalance", "OpResult",
           "ScaleResult", "UpdateResult", "RollbackResult", "RebalanceResult"]
