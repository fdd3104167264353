"""deploy refuses more replicas than the stack's gateway routes to, before it asks an engine anything."""
import pytest

from swarmml.errors import UsageError
from swarmml.ops import deploy

CFG = b"backend predictor\n    server-template replica 4 tasks.predictor:8080\n"
STACK = """version: "3.8"
services:
  predictor:
    image: registry:5000/swarmml/predictor:latest
    deploy:
      replicas: {replicas}
{labels}  gateway:
    image: registry:5000/swarmml/gateway:latest
    configs:
      - source: haproxy_cfg
        target: /usr/local/etc/haproxy/haproxy.cfg
configs:
  haproxy_cfg:
    file: ./haproxy.cfg
"""
AUTOSCALED = """      labels:
        io.swarmml.autoscale.min: "1"
        io.swarmml.autoscale.max: "{max}"
        io.swarmml.autoscale.target-inflight: "2"
"""


class NoEngine:
    """A client that fails the test if deploy asks it anything."""

    def __getattr__(self, name):
        raise AssertionError(f"deploy asked the engine ({name}) before refusing the stack")


def _deploy(tmp_path, replicas, labels=""):
    (tmp_path / "haproxy.cfg").write_bytes(CFG)
    (tmp_path / "stack.yml").write_text(STACK.format(replicas=replicas, labels=labels))
    return deploy.deploy([str(tmp_path / "stack.yml")], name="ml", environ={}, client=NoEngine())


def test_more_replicas_than_slots(tmp_path):
    with pytest.raises(UsageError) as refused:
        _deploy(tmp_path, 5)
    line = str(refused.value)
    assert line.startswith("service ml_predictor: 5 replicas, but the gateway ml_gateway's HAProxy config "
                           "(server-template ... 4 tasks.predictor) routes to at most 4")
    assert line.endswith("(nothing changed)") and "\n" not in line


def test_an_autoscaler_max_beyond_the_slots(tmp_path):
    with pytest.raises(UsageError, match=r"^service ml_predictor: 9 replicas at the autoscaler's max, but "):
        _deploy(tmp_path, 2, AUTOSCALED.format(max=9))
