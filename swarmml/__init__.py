"""swarmml: deploy scikit-learn inference services on Docker Swarm and prove that they scale.

    import swarmml
    sw = swarmml.connect()
    sw.scale(predictor=6, stack="ml")

See swarmml.api for the verbs and swarmml.errors for what they raise.
"""

__version__ = "0.1.0"

from swarmml.api import RolloutFailed, Swarm, connect  # noqa: E402  (after __version__, which modules read)
from swarmml.errors import EngineUnavailable, NotFound, SwarmmlError, UsageError  # noqa: E402

__all__ = ["connect", "Swarm", "RolloutFailed", "SwarmmlError", "UsageError", "NotFound", "EngineUnavailable",
           "__version__"]
