"""Generating stacks from Python; every shipped or generated file is accepted by the docker CLI."""
import glob
import os
import shutil
import subprocess

import pytest

from stack_helpers import ROOT, STACK_FILE, full_stack, swarmml


@pytest.mark.integration
def test_docker_cli_accepts_every_shipped_and_generated_file(tmp_path):
    # `docker stack config` runs in the client: no swarm needed, only the docker CLI.
    assert shutil.which("docker"), "the docker CLI is needed to check compatibility"
    files = [STACK_FILE] + sorted(glob.glob(os.path.join(ROOT, "stacks", "*.yml")))
    for args in (["--replicas", "4", "--no-gateway"], ["--model", "iris-rf", "--cpus", "0.25"]):
        gen = tmp_path / f"gen{len(files)}.yml"
        assert swarmml("generate", "-o", str(gen), *args).returncode == 0
        files.append(str(gen))
    files.append(full_stack(tmp_path))  # every setting of the Python API
    for f in files:
        done = subprocess.run(["docker", "stack", "config", "-c", f], capture_output=True, text=True)
        assert done.returncode == 0, f"{f}: {done.stderr}"
