"""How deploy writes images into service specs: docker client's normalization and --resolve-image rules."""
import copy

import pytest

from swarmml.ops import deploy
from swarmml.stack import imageref
from swarmml.stack.convert import DesiredStack
from swarmml.stack.plan import plan

DIGEST = "sha256:" + "ab" * 32
OLD = "sha256:" + "cd" * 32
PLATFORMS = [{"Architecture": "amd64", "OS": "linux"}]


@pytest.mark.parametrize("image,tagged,pinned", [
    ("nginx", "nginx:latest", f"nginx:latest@{DIGEST}"),
    ("nginx:1.25", "nginx:1.25", f"nginx:1.25@{DIGEST}"),
    ("docker.io/library/nginx", "nginx:latest", f"nginx:latest@{DIGEST}"),
    ("index.docker.io/acme/api:2", "acme/api:2", f"acme/api:2@{DIGEST}"),
    ("docker.io/acme/team/api", "acme/team/api:latest", f"acme/team/api:latest@{DIGEST}"),
    ("registry:5000/swarmml/predictor", "registry:5000/swarmml/predictor:latest",
     f"registry:5000/swarmml/predictor:latest@{DIGEST}"),
    ("localhost/app", "localhost/app:latest", f"localhost/app:latest@{DIGEST}"),
    ("my.registry.io/a/b:v1.2", "my.registry.io/a/b:v1.2", f"my.registry.io/a/b:v1.2@{DIGEST}"),
    # Already pinned: a digest is never replaced, and no tag is added.
    (f"nginx@{OLD}", f"nginx@{OLD}", f"nginx@{OLD}"),
    (f"registry:5000/x:1@{OLD}", f"registry:5000/x:1@{OLD}", f"registry:5000/x:1@{OLD}"),
])
def test_images_are_written_like_the_docker_client_does(image, tagged, pinned):
    assert imageref.tagged(image) == tagged
    # docker/cli tags first, then pins: the order deploy follows.
    assert imageref.with_digest(imageref.tagged(image), DIGEST) == pinned
    assert imageref.is_pinned(pinned)


@pytest.mark.parametrize("image", ["acme/API", "a" * 64, "bad image", "", ":tag", "x/"])
def test_invalid_references_are_left_for_the_engine_to_reject(image):
    assert imageref.parse(image) is None
    assert imageref.tagged(image) == image
    assert imageref.with_digest(image, DIGEST) == image


def _spec(name, image, label=None, platforms=None):
    task = {"ContainerSpec": {"Image": image}, "Placement": {}}
    if platforms:
        task["Placement"]["Platforms"] = platforms
    return {"Name": name, "Labels": {"com.docker.stack.namespace": "s", "com.docker.stack.image": label or image},
            "TaskTemplate": task, "Mode": {"Replicated": {"Replicas": 1}}}


def _stack(**images):
    return DesiredStack("s", services={f"s_{n}": _spec(f"s_{n}", i) for n, i in images.items()})


def _current(**images):
    """Services as the engine has them after a pinned deploy of `images` (label = image as written)."""
    return {"services": {f"s_{n}": {"ID": n, "Version": 7,
                                    "Spec": _spec(f"s_{n}", imageref.with_digest(imageref.tagged(i), OLD), label=i,
                                                  platforms=PLATFORMS)}
                         for n, i in images.items()}}


@pytest.mark.parametrize("mode,new,same,changed", [
    ("always", "resolve", "resolve", "resolve"),
    ("changed", "resolve", "keep", "resolve"),
    ("never", "as-is", "keep", "as-is"),
])
def test_resolve_image_modes_follow_docker_stack_deploy(mode, new, same, changed):
    desired = _stack(new="app:1", same="app:1", changed="app:2")
    current = _current(same="app:1", changed="app:1")
    assert deploy.image_choices(desired, current, mode) == {"s_new": new, "s_same": same, "s_changed": changed}


def test_a_recorded_revision_is_sent_pinned_as_recorded():
    # Stack rollback applies a recorded spec (already pinned) with resolve_image="never".
    desired = _stack(api=f"registry:5000/app:1@{DIGEST}")
    desired.services["s_api"]["Labels"]["com.docker.stack.image"] = "registry:5000/app:1"
    current = _current(api="registry:5000/app:1")
    assert deploy.image_choices(desired, current, "never") == {"s_api": "as-is"}
    deploy._set_images(None, desired, current, "never")
    assert desired.services["s_api"]["TaskTemplate"]["ContainerSpec"]["Image"] == f"registry:5000/app:1@{DIGEST}"


def test_keeping_the_running_image_makes_an_unchanged_redeploy_plan_nothing():
    desired = _stack(api="registry:5000/app", worker="registry:5000/app:2")
    current = _current(api="registry:5000/app", worker="registry:5000/app:2")
    before = copy.deepcopy(current)
    # No client: keeping needs no registry.
    assert deploy._set_images(None, desired, current, "changed") == []
    api = desired.services["s_api"]["TaskTemplate"]
    assert api["ContainerSpec"]["Image"] == f"registry:5000/app:latest@{OLD}"
    assert api["Placement"]["Platforms"] == PLATFORMS
    the_plan = plan(desired, current, pin_digests=True)
    assert {a.action for a in the_plan.actions} == {"unchanged"}
    assert current == before


def test_a_changed_image_without_resolving_is_sent_tagged_and_unpinned():
    desired = _stack(api="registry:5000/app:2")
    current = _current(api="registry:5000/app:1")
    deploy._set_images(None, desired, current, "never")
    spec = desired.services["s_api"]["TaskTemplate"]
    assert spec["ContainerSpec"]["Image"] == "registry:5000/app:2"
    (action,) = plan(desired, current, pin_digests=True).actions
    assert action.action == "update"
    assert ("TaskTemplate.ContainerSpec.Image", f"registry:5000/app:1@{OLD}", "registry:5000/app:2") in action.changes


def test_keep_running_image_drops_platforms_the_running_spec_lacks():
    spec = _spec("s_a", "app:1", platforms=PLATFORMS)
    deploy.keep_running_image(spec, _spec("s_a", f"app:1@{OLD}"))
    assert spec["TaskTemplate"]["ContainerSpec"]["Image"] == f"app:1@{OLD}"
    assert "Platforms" not in spec["TaskTemplate"]["Placement"]


def test_deploy_result_json_carries_plan_and_result():
    desired = _stack(api="app:1")
    result = deploy.DeployResult("s", plan(desired, {}, pin_digests=True), ["w"], revision=3, duration_s=0.1234)
    out = result.to_json()
    assert out["plan"] == [{"kind": "service", "name": "s_api", "action": "create", "changes": []}]
    assert (out["stack"], out["warnings"], out["revision"], out["duration_s"]) == ("s", ["w"], 3, 0.123)
    assert "converged" not in out
