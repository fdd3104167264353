"""The Python API on the real cluster: the README's ops script as written, and the kinds of error a script sees."""
import os
import re
import subprocess
import sys

import pytest

import swarmml
from stack_helpers import ROOT

pytestmark = pytest.mark.integration


def readme_script():
    text = open(os.path.join(ROOT, "README.md")).read()
    return re.search(r"<!-- ops-script -->\n```python\n(.*?)```", text, re.S).group(1)


@pytest.fixture
def ml_stack(cluster):
    yield "ml"
    sw = swarmml.connect(cluster=cluster.name)
    if "ml" in sw.ls():
        sw.rm("ml")


def test_the_readme_ops_script_runs_as_written(cluster, pushed_images, extra_images, ml_stack):
    assert extra_images["v2"] == "registry:5000/swarmml/predictor:2", extra_images  # the image the script names
    done = subprocess.run([sys.executable, "-c", readme_script()], capture_output=True, text=True, cwd=ROOT,
                          env=cluster.env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("stack ml deployed, revision ")
    assert lines[1].startswith("replicas per node: {'ml_predictor': {") and sum(
        int(n) for n in re.findall(r"'node\d': (\d+)", lines[1])) == 4
    assert re.match(r"rolled out in \d+ s$", lines[2]), lines


def test_a_script_tells_an_unknown_service_from_a_failed_rollout(cluster, pushed_images, extra_images, ml_stack):
    sw = swarmml.connect(cluster=cluster.name)
    sw.deploy(os.path.join(ROOT, "docker-stack.yml"))
    with pytest.raises(swarmml.NotFound, match="no service 'nope' in stack 'ml'"):
        sw.scale(nope=2, stack="ml")
    before = sw.ps("ml")
    with pytest.raises(swarmml.RolloutFailed) as failed:
        sw.update("predictor", stack="ml", image=extra_images["broken"], monitor="5s", timeout=300)
    assert failed.value.result.ok is False and "this image cannot start" in (failed.value.result.cause or "")
    # Swarm rolled back: the predictor runs its previous image on as many replicas as before.
    after = sw.ps("ml")
    def predictors(status):
        return [t for t in status.tasks if t["task"].split(".")[0].endswith("predictor") and t["state"] == "running"]
    assert len(predictors(after)) == len(predictors(before)) == 2
