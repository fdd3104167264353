"""Errors a person can act on.

Anything raised as a SwarmmlError is printed by the CLI as one line, without a
traceback, and exits non-zero. Anything else is a bug in swarmml.
"""
from typing import Any


class SwarmmlError(Exception):
    """A failure caused by input or environment, explained in one line."""

    exit_code = 1


class UsageError(SwarmmlError):
    """Bad input from the user: a wrong value, an unknown name, a bad file."""

    exit_code = 2


class Inconclusive(SwarmmlError):
    """A measurement that could not be made (a machine too busy to give the replicas their CPU): no evidence
    either way, so neither a pass nor a failure."""

    exit_code = 3


class EngineUnavailable(SwarmmlError):
    """No Docker engine answers where we looked."""


class NotFound(UsageError):
    """A named thing (cluster, service, stack, node) does not exist."""


class RolloutFailed(SwarmmlError):
    """A deploy, scale, update, rollback or rebalance that did not reach its goal (Swarm may have rolled it back).

    `result` is what the verb would have returned: its placement, problems and,
    for an update, the cause and whether Swarm rolled it back.
    """

    def __init__(self, message: str, result: Any):  # Any: a script reads failed.result.cause without a cast
        super().__init__(message)
        self.result = result
