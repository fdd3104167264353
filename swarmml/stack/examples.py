"""The example stacks under stacks/, described with the Python API.

The shipped YAML files are this module's output (a unit test keeps them in
step); regenerate them with `python -m swarmml.stack.examples [STACKS_DIR]`.
"""
import os
import sys

from swarmml.stack.model import DEFAULT_REGISTRY, DEFAULT_TAG, Stack, add_floating_ip, add_gateway, add_predictor

# Each replica says which service and slot answered (the predictor sends its hostname as x-replica).
HOSTNAME = "{{.Service.Name}}-{{.Task.Slot}}"


def _image(kind, tag=DEFAULT_TAG):
    return f"{DEFAULT_REGISTRY}/swarmml/{kind}:{tag}"


def two_models():
    """Two models side by side, each its own service, scaled and sized on its own; the gateway routes by path."""
    stack = Stack("models")
    net = stack.network("inference", attachable=True)
    add_predictor(stack, "predictor-logreg", _image("predictor"), [net], replicas=1, cpus=0.25, memory="256M",
                  models=("iris-logreg",), hostname=HOSTNAME)
    add_predictor(stack, "predictor-rf", _image("predictor"), [net], replicas=2, cpus=0.5, memory="512M",
                  models=("iris-rf",), hostname=HOSTNAME)
    add_gateway(stack, _image("gateway"), [net], "./two-models/haproxy.cfg", port="${GATEWAY_PORT:-8080}",
                config_name="two_models_haproxy_cfg")
    add_floating_ip(stack, _image("gateway"), port="${GATEWAY_PORT:-8080}")
    return stack


def canary():
    """A canary: a new predictor version takes a share of the traffic equal to its share of the replicas."""
    stack = Stack("canary")
    net = stack.network("inference", attachable=True)
    add_predictor(stack, "predictor", _image("predictor"), [net], replicas="${STABLE_REPLICAS:-3}",
                  hostname=HOSTNAME)
    add_predictor(stack, "predictor-canary", _image("predictor", "${CANARY_TAG:-latest}"), [net],
                  replicas="${CANARY_REPLICAS:-1}", hostname=HOSTNAME, deploy_labels={"swarmml.track": "canary"})
    add_gateway(stack, _image("gateway"), [net], "./canary/haproxy.cfg", port="${GATEWAY_PORT:-8080}",
                config_name="canary_haproxy_cfg")
    add_floating_ip(stack, _image("gateway"), port="${GATEWAY_PORT:-8080}")
    return stack


EXAMPLES = {
    "two-models.yml": (two_models, """
Two models side by side: each model is its own predictor service, with its
own replicas and resources; the gateway routes /v2/models/<name>/... to the
service that serves it.

  swarmml deploy stacks/two-models.yml
  curl -s $(swarmml url gateway --stack models)/v2/models/iris-rf/infer -d @request.json
"""),
    "canary.yml": (canary, """
A canary: the predictor at CANARY_TAG runs beside the stable one, and the
gateway balances over the replicas of both, so the canary's share of the
traffic is CANARY_REPLICAS / (STABLE_REPLICAS + CANARY_REPLICAS).

  CANARY_TAG=2 swarmml deploy stacks/canary.yml
  swarmml scale predictor-canary=2 --stack canary   # more traffic to the canary
"""),
}


def write_all(stacks_dir):
    for filename, (build, header) in EXAMPLES.items():
        path = os.path.join(stacks_dir, filename)
        with open(path, "w") as f:
            f.write(build().to_yaml(header=header))
        print(path)


if __name__ == "__main__":
    write_all(sys.argv[1] if len(sys.argv) > 1 else "stacks")
