"""swarmml: deploy scikit-learn inference services on Docker Swarm and prove that they scale.

    import swarmml
    sw = swarmml.connect()
    sw.scale(predictor=6, stack="ml")

See swarmml.api for the verbs and swarmml.errors for what they raise.
"""
from typing import TYPE_CHECKING

from swarmml._version import __version__
from swarmml.errors import EngineUnavailable, NotFound, RolloutFailed, SwarmmlError, UsageError

if TYPE_CHECKING:
    from swarmml.api import Swarm, connect

__all__ = ["connect", "Swarm", "RolloutFailed", "SwarmmlError", "UsageError", "NotFound", "EngineUnavailable",
           "__version__"]
_API = ("connect", "Swarm")


def __getattr__(name: str):
    # The API is imported on first use, not with the package: it pulls in build, and so numpy and the model
    # service, which the autoscaler's image (swarmml's own modules and a few wheels) does not carry.
    if name in _API:
        from swarmml import api
        return getattr(api, name)
    raise AttributeError(f"module 'swarmml' has no attribute {name!r}")
