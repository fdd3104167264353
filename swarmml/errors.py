"""Errors a person can act on.

Anything raised as a SwarmmlError is printed by the CLI as one line, without a
traceback, and exits non-zero. Anything else is a bug in swarmml.
"""


class SwarmmlError(Exception):
    """A failure caused by input or environment, explained in one line."""

    exit_code = 1


class UsageError(SwarmmlError):
    """Bad input from the user: a wrong value, an unknown name, a bad file."""

    exit_code = 2


class EngineUnavailable(SwarmmlError):
    """No Docker engine answers where we looked."""


class NotFound(UsageError):
    """A named thing (cluster, service, stack, node) does not exist."""
