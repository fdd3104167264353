"""Engine errors keep their kind, and the one retry policy: version conflicts and transient errors are
retried, a NotFound never. The client below stands in for docker.DockerClient; the errors are the SDK's own."""
import docker.errors
import pytest
import requests

from swarmml.engine import errors
from swarmml.engine import services

SPEC = {"Name": "ml_predictor", "TaskTemplate": {"ContainerSpec": {"Image": "x:1"}}}


def api_error(status, text):
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError(f"{status} Server Error", response=response, explanation=text)


class FakeAPI:
    """The low-level calls swarmml.engine.services makes, answering from `service` and `failures` (raised in order)."""

    def __init__(self, service, failures=()):
        self.service, self.failures, self.posted, self.inspected = service, list(failures), [], 0

    def inspect_service(self, ident):
        self.inspected += 1
        if self.failures and isinstance(self.failures[0], docker.errors.NotFound):
            raise self.failures.pop(0)
        return self.service

    def _url(self, path):
        return path

    def _post_json(self, url, data=None, params=None, headers=None):
        self.posted.append(params["version"])
        if self.failures:
            failure = self.failures.pop(0)
            if callable(failure):
                failure(self)
            else:
                raise failure
        return {"Warnings": None}

    def _result(self, response, json=False):
        return response


class FakeClient:
    def __init__(self, api):
        self.api = api


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(errors, "sleep", lambda s: None)


def service(version=10, spec=SPEC):
    return {"ID": "svc1", "Version": {"Index": version}, "Spec": spec}


def swarm_bumped_the_version(api):
    """What Swarm does while recording an update's status: the version moves on, the spec stays."""
    api.service = service(11)
    raise api_error(500, "rpc error: code = Unknown desc = update out of sequence")


def test_an_injected_version_conflict_is_retried_with_the_new_version_and_succeeds():
    api = FakeAPI(service(10), [swarm_bumped_the_version])
    assert services.update_service(FakeClient(api), service(10), SPEC) == []
    assert api.posted == [10, 11]


def test_a_version_conflict_from_a_changed_spec_is_not_overwritten():
    def someone_else_changed_it(api):
        api.service = {**service(11), "Spec": {**SPEC, "Labels": {"changed": "by someone"}}}
        raise api_error(500, "rpc error: code = Unknown desc = update out of sequence")
    api = FakeAPI(service(10), [someone_else_changed_it])
    with pytest.raises(errors.Conflict, match="changed by someone else") as raised:
        services.update_service(FakeClient(api), service(10), SPEC)
    assert not isinstance(raised.value, errors.OutOfSequence) and api.posted == [10]


def test_a_transient_error_is_retried_until_it_passes():
    api = FakeAPI(service(10), [api_error(503, "rpc error: code = Unavailable desc = swarm does not have a leader"),
                                requests.exceptions.ConnectionError("connection reset by peer")])
    services.update_service(FakeClient(api), service(10), SPEC)
    assert api.posted == [10, 10, 10]


def test_a_not_found_is_never_retried():
    api = FakeAPI(service(10), [docker.errors.NotFound("404", response=None, explanation="service ml_x not found")])
    with pytest.raises(errors.NotFound) as raised:
        services.service(FakeClient(api), "ml_x")
    assert api.inspected == 1
    assert str(raised.value) == "service ml_x: service ml_x not found"
    assert raised.value.exit_code == 2  # an unknown name, like every other


def test_retries_give_up_after_the_last_attempt_with_the_engines_error():
    api = FakeAPI(service(10), [api_error(503, "node is not part of a swarm")] * errors.ATTEMPTS)
    with pytest.raises(errors.Unavailable, match="node is not part of a swarm") as raised:
        services.update_service(FakeClient(api), service(10), SPEC)
    assert raised.value.status_code == 503 and len(api.posted) == errors.ATTEMPTS


@pytest.mark.parametrize("status,text,kind", [
    (404, "network ml_x not found", errors.NotFound),
    (409, "service ml_predictor already exists", errors.Conflict),
    (500, "rpc error: code = Unknown desc = update out of sequence", errors.OutOfSequence),
    (400, "rpc error: code = FailedPrecondition desc = network abc is in use by task def", errors.InUse),
    (403, "error while removing network: network ml_a id abc has active endpoints", errors.InUse),
    (500, "rpc error: code = Unknown desc = secret s is in use by the following service: ml_x", errors.InUse),
    (503, "This node is not a swarm manager.", errors.Unavailable),
    (500, "rpc error: code = Unknown desc = The swarm does not have a leader.", errors.Unavailable),
    (400, "rpc error: code = InvalidArgument desc = ContainerSpec: image reference must be provided",
     errors.EngineError),
])
def test_each_engine_answer_keeps_its_kind(status, text, kind):
    found = errors.classify("doing it", api_error(status, text))
    assert type(found) is kind and found.status_code == status and str(found) == f"doing it: {text}"


def test_every_kind_is_a_swarmml_error_the_cli_prints_in_one_line():
    from swarmml.errors import SwarmmlError
    assert all(issubclass(k, SwarmmlError) for k in (errors.NotFound, errors.Conflict, errors.InUse,
                                                       errors.OutOfSequence, errors.Unavailable))


class LeavingNode:
    """A node engine whose `swarm leave` answers as dockerd's does when its node takes over 15 s to stop."""

    def __init__(self, answers, state_after="active"):
        self.answers, self.state_after, self.asked = list(answers), state_after, 0
        self.swarm = self

    def leave(self, force=False):
        self.asked += 1
        answer = self.answers.pop(0)
        if answer:
            raise answer

    def info(self):
        return {"Swarm": {"LocalNodeState": self.state_after}}


def test_a_slow_leave_is_asked_again_and_other_failures_are_not():
    from swarmml.engine import swarm
    from swarmml.errors import SwarmmlError
    slow = api_error(500, "context deadline exceeded")
    node = LeavingNode([slow, None])
    swarm.swarm_leave(node, force=True)
    assert node.asked == 2
    # the node finished leaving while dockerd answered: nothing to ask again
    node = LeavingNode([slow], state_after="inactive")
    swarm.swarm_leave(node, force=True)
    assert node.asked == 1
    node = LeavingNode([slow] * swarm.LEAVE_ATTEMPTS)
    with pytest.raises(SwarmmlError, match="leaving the swarm failed: context deadline exceeded"):
        swarm.swarm_leave(node, force=True)
    assert node.asked == swarm.LEAVE_ATTEMPTS
    node = LeavingNode([api_error(503, "This node is not part of a swarm")])
    with pytest.raises(SwarmmlError, match="not part of a swarm"):
        swarm.swarm_leave(node)
    assert node.asked == 1
