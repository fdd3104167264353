"""A user's own pipeline served over real HTTP: per-column requests, string labels, a regressor, tritonclient."""
import concurrent.futures
import json
import os

import numpy as np
import pytest
import requests

from model_service_helpers import ROW, Server, infer_body
from pipelines import write_pipeline_model
from swarmml_model_service import models as m
from swarmml_model_service.train import train

TYPES = {"float64": "FP64", "int64": "INT64", "bool": "BOOL", "object": "BYTES"}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    train(str(out), names=["iris-logreg"])
    clf = write_pipeline_model(out, "iris-pipeline", kind="classifier", version="3")
    reg = write_pipeline_model(out, "iris-width", kind="regressor", batching=False)
    walked = write_pipeline_model(out, "iris-walked", sample=False)
    return out, {"iris-pipeline": clf, "iris-width": reg, "iris-walked": walked}


@pytest.fixture(scope="module")
def server(models_dir):
    # A long batch wait, so that concurrent requests surely share predict calls.
    s = Server(models_dir[0], SWARMML_MAX_BATCH_WAIT_MS=10).wait_ready()
    yield s
    s.terminate()


def column_body(frame, outputs=None, **extra):
    """A request as MLServer's PandasCodec.encode_request makes it (shape [n, 1], strings with content_type str)."""
    inputs = []
    for name in frame.columns:
        values = frame[name]
        datatype = TYPES[str(values.dtype)]
        t = {"name": name, "shape": [len(frame), 1], "datatype": datatype, "data": values.tolist()}
        if datatype == "BYTES":
            t["parameters"] = {"content_type": "str"}
        inputs.append(t)
    body = {"parameters": {"content_type": "pd"}, "inputs": inputs}
    if outputs:
        body["outputs"] = [{"name": o} for o in outputs]
    body.update(extra)
    return body


def infer(server, model, body):
    return requests.post(f"{server.url}/v2/models/{model}/infer", json=body)


def by_name(resp):
    return {o["name"]: o for o in resp.json()["outputs"]}


def test_metadata_lists_one_input_per_column_and_the_outputs_the_estimator_has(server):
    assert "binary_tensor_data" in requests.get(server.url + "/v2").json()["extensions"]
    meta = requests.get(server.url + "/v2/models/iris-pipeline").json()
    assert meta["versions"] == ["3"]
    assert meta["inputs"] == [
        {"name": "sepal_length", "datatype": "FP64", "shape": [-1, 1]},
        {"name": "sepal_width", "datatype": "FP64", "shape": [-1, 1]},
        {"name": "petal_length", "datatype": "FP64", "shape": [-1, 1]},
        {"name": "petal_width_mm", "datatype": "INT64", "shape": [-1, 1]},
        {"name": "size", "datatype": "BYTES", "shape": [-1, 1]},
        {"name": "wide_sepal", "datatype": "BOOL", "shape": [-1, 1]}]
    assert meta["outputs"] == [{"name": "predict", "datatype": "BYTES", "shape": [-1]},
                               {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
                               {"name": "decision_function", "datatype": "FP64", "shape": [-1, 3]}]
    reg = requests.get(server.url + "/v2/models/iris-width").json()
    assert reg["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
    assert [i["name"] for i in reg["inputs"]] == ["sepal_length", "sepal_width", "petal_length", "size", "wide_sepal"]
    num = requests.get(server.url + "/v2/models/iris-logreg").json()
    assert num["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]


def test_served_pipeline_answers_as_the_pipeline_does_in_process(server, models_dir):
    frame, est = models_dir[1]["iris-pipeline"]
    r = infer(server, "iris-pipeline", column_body(frame, ["predict", "predict_proba", "decision_function"], id="p1"))
    assert r.status_code == 200, r.text
    outs = by_name(r)
    assert r.json()["id"] == "p1" and r.json()["model_version"] == "3"
    assert outs["predict"]["datatype"] == "BYTES" and outs["predict"]["shape"] == [150]
    assert outs["predict"]["data"] == est.predict(frame).tolist()
    assert outs["predict_proba"]["shape"] == [150, 3]
    np.testing.assert_allclose(np.array(outs["predict_proba"]["data"]).reshape(150, 3), est.predict_proba(frame),
                               rtol=1e-12)
    np.testing.assert_allclose(np.array(outs["decision_function"]["data"]).reshape(150, 3),
                               est.decision_function(frame), rtol=1e-12)


def test_flat_shapes_and_any_column_order_give_the_same_answer(server, models_dir):
    frame, est = models_dir[1]["iris-pipeline"]
    body = column_body(frame.iloc[48:53])
    for t in body["inputs"]:
        t["shape"] = [5]
    body["inputs"].reverse()
    assert by_name(infer(server, "iris-pipeline", body))["predict"]["data"] == est.predict(frame.iloc[48:53]).tolist()


def test_a_signature_guessed_without_a_sample_still_takes_the_frame_as_mlserver_sends_it(server, models_dir):
    frame, est = models_dir[1]["iris-walked"]
    meta = requests.get(server.url + "/v2/models/iris-walked").json()
    assert {i["name"]: i["datatype"] for i in meta["inputs"]}["wide_sepal"] == "FP64"  # the walk can't tell bools
    r = infer(server, "iris-walked", column_body(frame))  # wide_sepal as BOOL, petal_width_mm as INT64
    assert r.status_code == 200, r.text
    assert by_name(r)["predict"]["data"] == est.predict(frame).tolist()


def test_regressor_predictions(server, models_dir):
    frame, est = models_dir[1]["iris-width"]
    out = by_name(infer(server, "iris-width", column_body(frame)))["predict"]
    assert out["datatype"] == "FP64" and out["shape"] == [150]
    np.testing.assert_allclose(out["data"], est.predict(frame), rtol=1e-12)
    r = infer(server, "iris-width", column_body(frame.iloc[:2], ["predict_proba"]))
    assert r.status_code == 400
    assert r.json()["error"] == "outputs[0].name: the model has no output 'predict_proba' (it has predict)"


def test_numeric_model_takes_today_s_tensor_and_one_tensor_per_feature(server):
    r = infer(server, "iris-logreg", infer_body([ROW]))
    assert by_name(r)["predict"]["data"] == [0]
    body = {"parameters": {"content_type": "pd"},
            "inputs": [{"name": f"f{i}", "shape": [1, 1], "datatype": "FP64", "data": [v]} for i, v in enumerate(ROW)]}
    assert by_name(infer(server, "iris-logreg", body))["predict"]["data"] == [0]
    three = {"inputs": body["inputs"][:3]}
    assert infer(server, "iris-logreg", three).json()["error"] == (
        "expected 1 input tensor [rows, 4], or 4 tensors of one column each; got 3")


def _with(body, name, **over):
    for t in body["inputs"]:
        if t["name"] == name:
            t.update(over)
    return body


@pytest.mark.parametrize("mutate,message", [
    (lambda b: b["inputs"].append({"name": "colour", "shape": [2, 1], "datatype": "BYTES", "data": ["a", "b"]}),
     "unknown column 'colour' (the model takes sepal_length, sepal_width, petal_length, petal_width_mm, size, "
     "wide_sepal)"),
    (lambda b: b["inputs"].pop(4),
     "missing column 'size' (the model takes sepal_length, sepal_width, petal_length, petal_width_mm, size, "
     "wide_sepal)"),
    (lambda b: _with(b, "size", datatype="FP64", data=[1.0, 2.0]),
     "column 'size': expected BYTES (strings), got datatype FP64"),
    (lambda b: _with(b, "sepal_length", datatype="BYTES", data=["5.1", "4.9"]),
     "column 'sepal_length': expected FP64 numbers, got BYTES (strings)"),
    (lambda b: _with(b, "sepal_length", data=["5.1", "4.9"]),
     "column 'sepal_length': data holds strings where FP64 values are expected"),
    (lambda b: _with(b, "petal_width_mm", datatype="FP64", data=[2.0, 2.0]),
     "column 'petal_width_mm': expected datatype INT64, got FP64"),
    (lambda b: _with(b, "wide_sepal", shape=[3, 1], data=[True, False, True]),
     "columns differ in length: 'sepal_length' has 2 rows, 'wide_sepal' has 3"),
    (lambda b: b.update(outputs=[{"name": "transform"}]),
     "outputs[0].name: the model has no output 'transform' (it has predict, predict_proba, decision_function)"),
])
def test_bad_column_requests_are_400s_naming_the_column(server, models_dir, mutate, message):
    frame, _ = models_dir[1]["iris-pipeline"]
    body = column_body(frame.iloc[:2])
    mutate(body)
    r = infer(server, "iris-pipeline", body)
    assert r.status_code == 400 and r.json() == {"error": message}
    assert requests.get(server.url + "/v2/health/live").status_code == 200


def test_unknown_category_is_the_model_s_error_and_says_so(server, models_dir):
    frame, _ = models_dir[1]["iris-pipeline"]
    body = _with(column_body(frame.iloc[:1]), "size", data=["huge"])
    r = infer(server, "iris-pipeline", body)
    assert r.status_code == 500 and "huge" in r.json()["error"]


def _metric(text, name, model):
    for line in text.splitlines():
        if line.startswith(name) and f'model="{model}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_concurrent_column_requests_share_predict_calls(server, models_dir):
    frame, est = models_dir[1]["iris-pipeline"]
    before = requests.get(server.url + "/metrics").text
    slices = [frame.iloc[i:i + 1 + i % 3] for i in range(48)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda s: infer(server, "iris-pipeline", column_body(s)), slices))
    assert [by_name(r)["predict"]["data"] for r in results] == [est.predict(s).tolist() for s in slices]
    after = requests.get(server.url + "/metrics").text
    calls = (_metric(after, "swarmml_infer_batch_rows_count", "iris-pipeline")
             - _metric(before, "swarmml_infer_batch_rows_count", "iris-pipeline"))
    rows = (_metric(after, "swarmml_infer_batch_rows_sum", "iris-pipeline")
            - _metric(before, "swarmml_infer_batch_rows_sum", "iris-pipeline"))
    assert rows == sum(len(s) for s in slices)
    assert calls < len(slices), f"{calls} predict calls for {len(slices)} concurrent requests: no batching happened"


def triton_infer(client, model, frame, binary, outputs):
    import tritonclient.http as httpclient
    inputs = []
    for name in frame.columns:
        values = frame[name].to_numpy()
        datatype = TYPES[str(values.dtype)]
        arr = values.reshape(-1, 1)
        if datatype == "BYTES":
            arr = arr.astype(object)
        t = httpclient.InferInput(name, list(arr.shape), datatype)
        t.set_data_from_numpy(arr, binary_data=binary)
        inputs.append(t)
    wanted = [httpclient.InferRequestedOutput(o, binary_data=binary) for o in outputs]
    return client.infer(model, inputs, outputs=wanted)


def _strings(arr):
    return [v.decode() if isinstance(v, bytes) else v for v in arr.ravel().tolist()]


@pytest.fixture(scope="module")
def triton(server):
    import tritonclient.http as httpclient
    client = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
    yield client
    client.close()


def test_tritonclient_binary_and_json_give_the_same_answers(triton, models_dir):
    frame, est = models_dir[1]["iris-pipeline"]
    outs = ["predict", "predict_proba"]
    as_binary = triton_infer(triton, "iris-pipeline", frame, True, outs)
    as_json = triton_infer(triton, "iris-pipeline", frame, False, outs)
    assert as_binary.get_output("predict")["parameters"]["binary_data_size"] > 0  # really went binary
    assert "data" in as_json.get_output("predict")
    expected = est.predict(frame).tolist()
    assert _strings(as_binary.as_numpy("predict")) == _strings(as_json.as_numpy("predict")) == expected
    np.testing.assert_array_equal(as_binary.as_numpy("predict_proba"), as_json.as_numpy("predict_proba"))
    np.testing.assert_allclose(as_binary.as_numpy("predict_proba"), est.predict_proba(frame), rtol=1e-12)


def test_tritonclient_regressor_and_numeric_model(triton, models_dir):
    import tritonclient.http as httpclient
    frame, est = models_dir[1]["iris-width"]
    for binary in (True, False):
        got = triton_infer(triton, "iris-width", frame, binary, ["predict"]).as_numpy("predict")
        np.testing.assert_allclose(got, est.predict(frame), rtol=1e-12)
    rows = np.array([ROW, [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
    for binary in (True, False):
        t = httpclient.InferInput("input-0", [2, 4], "FP32")
        t.set_data_from_numpy(rows, binary_data=binary)
        # No outputs asked: tritonclient sets binary_data_output, and the default output comes back binary.
        result = triton.infer("iris-logreg", [t])
        assert result.as_numpy("predict").tolist() == [0, 2]
        assert ("binary_data_size" in result.get_output("predict").get("parameters", {}))


def test_binary_response_headers(server, models_dir):
    frame, est = models_dir[1]["iris-width"]
    body = column_body(frame.iloc[:3], ["predict"])
    body["outputs"][0]["parameters"] = {"binary_data": True}
    r = infer(server, "iris-width", body)
    n = int(r.headers["Inference-Header-Content-Length"])
    assert r.headers["content-type"] == "application/octet-stream"
    header = json.loads(r.content[:n])
    assert header["outputs"] == [{"name": "predict", "shape": [3], "datatype": "FP64",
                                  "parameters": {"binary_data_size": 24}}]
    np.testing.assert_allclose(np.frombuffer(r.content[n:], dtype="<f8"), est.predict(frame.iloc[:3]), rtol=1e-12)


def test_bad_binary_request_is_a_400(server):
    head = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",
                                   "parameters": {"binary_data_size": 32}}]}).encode()
    r = requests.post(server.url + "/v2/models/iris-logreg/infer", data=head + b"\0" * 16,
                      headers={"Inference-Header-Content-Length": str(len(head))})
    assert r.status_code == 400 and r.json()["error"] == (
        "inputs[0]: binary_data_size 32 runs past the end of the body (16 bytes left)")


def test_loading_checks_the_signature_and_warm_up_copes_without_categories(models_dir, tmp_path):
    out, _ = models_dir
    loaded = m.load_models(str(out), ["iris-pipeline", "iris-width"], set())
    assert loaded["iris-pipeline"].n_features == 6 and loaded["iris-width"].outputs == ("predict",)
    assert all(m.warm_up(x) is None for x in loaded.values())
    sig = {"columns": True, "inputs": [{"name": "plan", "datatype": "BYTES"}]}
    assert "no category known for column 'plan'" in m.warm_up_columns(sig, {})
    import shutil
    shutil.copytree(os.path.join(out, "iris-width"), tmp_path / "bad")
    meta_path = tmp_path / "bad" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["signature"]["inputs"].reverse()
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(m.ModelError, match="differ from those the model was fitted with"):
        m.load_models(str(tmp_path), ["bad"], set())
    meta["signature"]["inputs"][0]["datatype"] = "TEXT"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(m.ModelError, match=r"meta.json: inputs\[0\] \('wide_sepal'\).datatype must be one of"):
        m.load_models(str(tmp_path), ["bad"], set())
