"""The model service's one error type and how HTTP says it; the data plane's infer, with no HTTP in it."""
import asyncio

import orjson
import pytest
import sklearn

from model_service_helpers import ROW, TRUSTED_TYPES_FILE, infer_body
from swarmml_model_service import errors, models, protocol
from swarmml_model_service.app import App, _read_body, error_answer
from swarmml_model_service.config import Settings
from swarmml_model_service.dataplane import DataPlane
from swarmml_model_service.errors import BadRequest, ModelError, ModelServiceError, StartupFailed
from swarmml_model_service.train import train


# --- the error type and its HTTP mapping ---------------------------------------

@pytest.mark.parametrize("error,status", [
    (BadRequest("inputs[0].shape: the model expects 4 features per row, got 3"), 400),
    (ModelServiceError("model 'nope' not found", 404), 404),
    (ModelServiceError("infer needs POST", 405), 405),
    (ModelServiceError("request body is over the limit of 10 bytes", 413), 413),
    (ModelServiceError("inference failed: ValueError: boom", 500), 500),
    (ModelServiceError("not ready", 503), 503),
])
def test_an_error_is_answered_with_its_status_and_its_message(error, status):
    assert error_answer(error) == (status, orjson.dumps({"error": str(error)}))


def test_a_bad_request_is_a_400_and_still_a_value_error():
    err = BadRequest("'inputs' must be a non-empty list of tensors")
    assert (err.status_code, str(err)) == (400, "'inputs' must be a non-empty list of tensors")
    assert isinstance(err, ModelServiceError) and isinstance(err, ValueError)


def test_load_failures_are_not_answers():
    # A model that fails to load stops the start; no front end may turn it into a status.
    assert not issubclass(ModelError, ModelServiceError)
    assert not issubclass(StartupFailed, ModelServiceError)
    assert str(ModelError("sha256 is abc…", "/models/m/model.skops")) == "/models/m/model.skops: sha256 is abc…"


def test_the_old_names_are_the_one_types():
    assert protocol.BadRequest is errors.BadRequest and models.ModelError is errors.ModelError


def _receive(*chunks):
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive():
        return messages.pop(0)
    return receive


@pytest.mark.parametrize("headers,chunks,message", [
    ([(b"content-length", b"11")], [b"x" * 11], "request body of 11 bytes is over the limit of 10 bytes"),
    ([], [b"x" * 6, b"x" * 6], "request body is over the limit of 10 bytes"),
])
def test_a_body_over_the_limit_is_a_413(headers, chunks, message):
    with pytest.raises(ModelServiceError) as err:
        asyncio.run(_read_body({"headers": headers}, _receive(*chunks), 10))
    assert (err.value.status_code, str(err.value)) == (413, message)


def asgi_get(app, path, method="GET"):
    """(status, JSON body) of a request to the ASGI app, without a server."""
    sent = []

    async def send(message):
        sent.append(message)
    scope = {"type": "http", "method": method, "path": path, "headers": []}
    asyncio.run(app(scope, _receive(b""), send))
    return sent[0]["status"], orjson.loads(sent[1]["body"])


@pytest.mark.parametrize("path,method,status,error", [
    ("/v2/models/nope", "GET", 404, "model 'nope' not found"),
    ("/v2/models/nope/infer", "POST", 404, "model 'nope' not found"),
    ("/v2/models/a/b/c", "GET", 404, "no route /v2/models/a/b/c"),
    ("/v2/nothing", "GET", 404, "no route /v2/nothing"),
])
def test_the_http_layer_answers_a_data_plane_error_with_its_status(path, method, status, error):
    app = App(DataPlane(Settings(models_dir="/nonexistent", metrics=False)))
    assert asgi_get(app, path, method) == (status, {"error": error})


# --- the data plane, called with no HTTP in it -----------------------------------

class Recorded:
    """A Reply that keeps what infer answered or refused, per channel."""

    def __init__(self):
        self.answers, self.refusals = {}, {}

    async def answer(self, to, out, json_length):
        self.answers[to] = orjson.loads(out if json_length is None else out[:json_length])

    async def refuse(self, to, error):
        self.refusals[to] = error


async def body(raw):
    return raw, None


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    train(str(out), version="3", names=["iris-logreg"])
    return out


@pytest.mark.parametrize("batching", ["on", "off"])
def test_infer_without_http(models_dir, batching):
    settings = Settings(models_dir=str(models_dir), models=[], trusted_types_file=TRUSTED_TYPES_FILE,
                        trusted_types="", batching=batching, inference_log="")
    plane = DataPlane(settings)
    reply = Recorded()

    async def serve():
        model = plane.model("iris-logreg")
        await plane.infer(model, body(b"{}"), reply, "early")  # not started yet: not ready
        plane.start()
        await asyncio.gather(
            plane.infer(model, body(orjson.dumps(infer_body([ROW, [6.7, 3.0, 5.2, 2.3]], id="r-1"))), reply, "ok"),
            plane.infer(model, body(b"{not json"), reply, "bad"))
        await plane.stop()

    with sklearn.config_context():  # load() sets scikit-learn's assume_finite for the process; not for the others
        plane.load()
        asyncio.run(serve())
    assert reply.answers == {"ok": {"model_name": "iris-logreg", "model_version": "3", "id": "r-1", "outputs": [
        {"name": "predict", "shape": [2], "datatype": "INT64", "data": [0, 2]}]}}
    assert {to: (e.status_code, str(e).split(":")[0]) for to, e in reply.refusals.items()} == {
        "early": (503, "not ready"), "bad": (400, "malformed JSON")}
    text = plane.metrics.render().decode()
    for code in ("400", "503"):
        assert f'swarmml_infer_failure_total{{code="{code}",model="iris-logreg",version="3"}} 1.0' in text
    assert 'swarmml_infer_success_total{model="iris-logreg",version="3"} 1.0' in text
    assert plane.in_flight == 0 and not plane.ready()
