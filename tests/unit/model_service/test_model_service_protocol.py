"""Open Inference Protocol parsing and model loading rules: pure, no server."""
import json
import os

import numpy as np
import pytest

from model_service_helpers import ROW
from swarmml_model_service import models as m
from swarmml_model_service.protocol import BadRequest, output_tensor, parse_infer
from swarmml_model_service.train import train


def tensor(**over):
    t = {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1.0, 2.0, 3.0, 4.0]}
    t.update(over)
    return {"inputs": [t]}


def test_flat_and_nested_data_and_any_input_name():
    rows, outs, rid = parse_infer({**tensor(name="whatever"), "id": "r1"}, 4)
    assert rows.shape == (1, 4) and outs == ("predict",) and rid == "r1"
    rows, _, _ = parse_infer(tensor(shape=[2, 4], data=[[1, 2, 3, 4], [5, 6, 7, 8]]), 4)
    assert rows.dtype == np.float64 and rows.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]
    rows, _, _ = parse_infer(tensor(shape=[4], datatype="INT32", data=[1, 2, 3, 4]), 4)
    assert rows.shape == (1, 4)


def test_outputs_requested():
    _, outs, _ = parse_infer({**tensor(), "outputs": [{"name": "predict_proba"}, {"name": "predict"}]}, 4)
    assert outs == ("predict_proba", "predict")


@pytest.mark.parametrize("body,fragment", [
    ([1, 2], "must be a JSON object"),
    ({}, "'inputs' must be a non-empty list"),
    ({"inputs": []}, "'inputs' must be a non-empty list"),
    ({"inputs": [tensor()["inputs"][0]] * 2}, "expected 1 input tensor"),
    (tensor(shape=[1, 3], data=[1, 2, 3]), "expects 4 features per row, got 3"),
    (tensor(shape=[2, 4]), "holds 8 values, data has 4"),
    (tensor(shape=[1, -4]), "non-negative integers"),
    (tensor(shape="1,4"), "expected [rows, features]"),
    (tensor(datatype="FP128"), "unknown datatype 'FP128'"),
    (tensor(datatype="BYTES"), "BYTES is not supported"),
    (tensor(data=["1", "2", "3", "4"]), "do not match datatype FP64 (got strings)"),
    (tensor(datatype="INT64", data=[1.5, 2, 3, 4]), "do not match datatype INT64 (got floats)"),
    (tensor(datatype="UINT8", data=[1, 2, 3, 400]), "out of range for UINT8"),
    (tensor(data=[True, False, True, 1.0]), None),  # numpy makes these floats: accepted as 1/0
    (tensor(shape=[0, 4], data=[]), "empty input"),
    (tensor(data=[[1, 2], [3]], shape=[2, 2]), "ragged"),
    (tensor(data=[1.0, float("inf"), 3, 4]), "NaN or infinity"),
    (tensor(data=[1.0, float("nan"), 3, 4]), "NaN or infinity"),
    ({**tensor(), "outputs": [{"name": "decision_function"}]}, "outputs[0].name"),
    ({**tensor(), "id": 5}, "'id' must be a string"),
])
def test_bad_requests(body, fragment):
    if fragment is None:
        parse_infer(body, 4)
        return
    with pytest.raises(BadRequest) as err:
        parse_infer(body, 4)
    assert fragment in str(err.value)


def test_output_tensor_types():
    assert output_tensor("predict", np.array([0, 2]))["datatype"] == "INT64"
    t = output_tensor("predict_proba", np.array([[0.5, 0.5]]))
    assert t == {"name": "predict_proba", "shape": [1, 2], "datatype": "FP64", "data": [0.5, 0.5]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    train(str(out))
    return out


def test_skops_loads_only_default_and_operator_trusted_types(trained, tmp_path):
    # A forest's tree storage is scikit-learn's own: trusted by default (test_model_trust.py has the rest).
    rf = os.path.join(trained, "iris-rf", "model.skops")
    assert m.load_artifact(rf, trusted=set()).predict(np.array([ROW])).tolist() == [0]
    import operator

    import skops.io as sio
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    est = m.load_artifact(os.path.join(trained, "iris-logreg", "model.skops"), trusted=set())
    path = str(tmp_path / "model.skops")
    sio.dump(make_pipeline(FunctionTransformer(operator.neg), est), path)
    with open(path + ".sha256", "w") as f:
        f.write(m.sha256_file(path))
    with pytest.raises(m.ModelError, match="types not in the operator's trusted list: _operator.neg$"):
        m.load_artifact(path, trusted=set())
    loaded = m.load_artifact(path, trusted={"_operator.neg"})
    assert loaded.predict(np.array([ROW])).tolist() == est.predict(-np.array([ROW])).tolist()


def test_trusted_types_come_from_config_and_environment(tmp_path):
    cfg = tmp_path / "trusted.txt"
    cfg.write_text("# comment\nsklearn.tree._tree.Tree\n\n")
    assert m.load_trusted_types(str(cfg), "a.B, c.D") == {"sklearn.tree._tree.Tree", "a.B", "c.D"}
    assert m.load_trusted_types(str(tmp_path / "missing"), "") == set()


def test_sha256_mismatch_and_missing_digest_refused(trained, tmp_path):
    import shutil
    d = tmp_path / "m"
    shutil.copytree(os.path.join(trained, "iris-logreg"), d)
    path = str(d / "model.skops")
    with open(path, "ab") as f:
        f.write(b"tampered")
    with pytest.raises(m.ModelError, match="sha256 is"):
        m.load_artifact(path, trusted=set())
    os.remove(path + ".sha256")
    with pytest.raises(m.ModelError, match="refusing an unverified artifact"):
        m.load_artifact(path, trusted=set())


def test_pickle_and_joblib_refused_unless_opted_in(trained, tmp_path):
    import joblib
    est = m.load_artifact(os.path.join(trained, "iris-logreg", "model.skops"), trusted=set())
    path = str(tmp_path / "model.joblib")
    joblib.dump(est, path)
    with open(path + ".sha256", "w") as f:
        f.write(m.sha256_file(path))
    with pytest.raises(m.ModelError, match="pickle/joblib artifacts can run code"):
        m.load_artifact(path, trusted=set())
    assert m.load_artifact(path, trusted=set(), allow_pickle=True).predict(np.array([ROW])).tolist() == [0]


def test_load_models_reports_missing_names(trained):
    with pytest.raises(m.ModelError, match="models not found .*: nope"):
        m.load_models(str(trained), ["nope"], set())
    loaded = m.load_models(str(trained), [], {"sklearn.tree._tree.Tree"})
    assert set(loaded) == {"iris-logreg", "iris-rf"}
    assert loaded["iris-rf"].n_features == 4 and json.loads(open(os.path.join(trained, "iris-rf", "meta.json")).read())
