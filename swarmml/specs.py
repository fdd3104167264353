"""Pure edits of a ServiceSpec for scale and update; they live in swarmml.ops now, kept here for callers."""
from swarmml.ops.scale import parse_replicas, parse_targets, with_replicas  # noqa: F401
from swarmml.ops.state import is_global  # noqa: F401
from swarmml.ops.update import FAILURE_ACTIONS, ORDERS, with_update  # noqa: F401
