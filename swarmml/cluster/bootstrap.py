"""Bring up a Docker engine on this machine when none answers.

The work is done by the packaged engine-up.sh (also run by scripts/ and CI
before swarmml is installed); this module runs it for `swarmml cluster up`.
"""
import subprocess
from importlib import resources

from swarmml.engine import host_client
from swarmml.errors import EngineUnavailable, SwarmmlError


def ensure_engine():
    """A DockerClient for the host engine, starting the engine first if needed."""
    try:
        return host_client()
    except EngineUnavailable:
        pass
    with resources.as_file(resources.files("swarmml") / "data" / "bootstrap" / "engine-up.sh") as script:
        done = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr.strip() or done.stdout.strip() or "engine-up.sh failed").splitlines()
        raise SwarmmlError(lines[0])
    return host_client()
