"""Requests made by MLServer's own PandasCodec, replayed: a client written for MLServer works unchanged.

tests/data/mlserver_pandas_request.json holds what MLServer 1.7.1's PandasCodec.encode_request produced
for rows of the test pipeline's frame (recorded by scripts/record_peer_requests.py, which documents the
frame), so this test needs no MLServer. scripts/bench_inference.py sends such bodies to both servers live.
"""
import paths
import json
import os

import pandas as pd
import pytest
import requests
import sklearn

from model_service_helpers import Server
from pipelines import write_pipeline_model

RECORDED = os.path.join(paths.DATA, "mlserver_pandas_request.json")


@pytest.fixture(scope="module")
def recorded():
    with open(RECORDED) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def served(tmp_path_factory, recorded):
    models = tmp_path_factory.mktemp("models")
    _, estimator = write_pipeline_model(models, recorded["model"])
    server = Server(models).wait_ready()
    yield server, estimator
    server.terminate()


def recorded_frame(recorded):
    f = recorded["frame"]
    frame = pd.DataFrame(f["rows"], columns=f["columns"])
    return frame.astype(f["dtypes"])


@pytest.mark.parametrize("key", ["request", "request_one_row"])
def test_mlserver_pandas_codec_requests_get_the_pipelines_own_answers(served, recorded, key):
    server, estimator = served
    frame = recorded_frame(recorded)
    if key == "request_one_row":
        frame = frame.iloc[:1]
    body = dict(recorded[key], outputs=[{"name": "predict"}, {"name": "predict_proba"}])
    r = requests.post(f"{server.url}/v2/models/{recorded['model']}/infer", json=body, timeout=10)
    assert r.status_code == 200, r.text
    outputs = {o["name"]: o for o in r.json()["outputs"]}
    assert outputs["predict"]["datatype"] == "BYTES"
    assert outputs["predict"]["data"] == estimator.predict(frame).tolist()
    assert outputs["predict_proba"]["data"] == pytest.approx(estimator.predict_proba(frame).ravel().tolist())
    # And what the pipeline answered when the request was recorded (same data, same scikit-learn).
    if recorded["expected"]["sklearn_version"] == sklearn.__version__:
        assert outputs["predict"]["data"] == recorded["expected"]["predict"][:len(frame)]
