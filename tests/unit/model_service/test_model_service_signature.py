"""The signature module: inferring a model's columns, checking a user's signature file, metadata: pure."""
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from pipelines import iris_frame, make_pipeline as make_iris_pipeline
from swarmml_model_service.signature import (column_hints, datatype_of_dtype, infer_signature, metadata_inputs,
                                             metadata_outputs, validate_signature)

EXPECTED = [{"name": "sepal_length", "datatype": "FP64"}, {"name": "sepal_width", "datatype": "FP64"},
            {"name": "petal_length", "datatype": "FP64"}, {"name": "petal_width_mm", "datatype": "INT64"},
            {"name": "size", "datatype": "BYTES"}, {"name": "wide_sepal", "datatype": "BOOL"}]


def test_with_a_sample_frame_dtypes_give_the_datatypes():
    frame, est = make_iris_pipeline("classifier")
    assert infer_signature(est, frame) == {"columns": True, "inputs": EXPECTED}


def test_sample_columns_beyond_the_model_are_ignored_and_order_is_the_fit_order():
    frame, est = make_iris_pipeline("classifier")
    wider = frame[list(reversed(frame.columns))].assign(target=1)
    assert infer_signature(est, wider) == {"columns": True, "inputs": EXPECTED}
    with pytest.raises(ValueError, match="lacks column.*size"):
        infer_signature(est, frame.drop(columns=["size"]))


def test_without_a_sample_the_pipeline_walk_finds_the_string_columns():
    _, est = make_iris_pipeline("classifier")
    sig = infer_signature(est)
    assert [i["name"] for i in sig["inputs"]] == [i["name"] for i in EXPECTED]
    # Only what an encoder learnt strings for is BYTES; the walk can't tell ints or bools from floats.
    assert {i["name"]: i["datatype"] for i in sig["inputs"]} == {
        "sepal_length": "FP64", "sepal_width": "FP64", "petal_length": "FP64", "petal_width_mm": "FP64",
        "size": "BYTES", "wide_sepal": "FP64"}


def test_walk_through_nested_pipelines_mixed_encoders_and_remainder():
    frame = pd.DataFrame({"city": ["a", "b", "a"], "code": [1, 2, 1], "plan": ["x", None, "y"], "n": [1.0, 2, 3]})
    ct = ColumnTransformer([
        ("enc", OneHotEncoder(), ["city", "code"]),  # one encoder, a string column and a numeric one
        ("plan", make_pipeline(SimpleImputer(strategy="most_frequent"), OrdinalEncoder()), ["plan"]),
    ], remainder="passthrough")
    est = Pipeline([("ct", ct), ("lr", LinearRegression())]).fit(frame, [1.0, 2.0, 3.0])
    assert infer_signature(est)["inputs"] == [
        {"name": "city", "datatype": "BYTES"}, {"name": "code", "datatype": "FP64"},
        {"name": "plan", "datatype": "BYTES"}, {"name": "n", "datatype": "FP64"}]
    hints = column_hints(est)
    assert hints["city"] == (True, "a") and hints["code"] == (False, None) and hints["plan"][0]


def test_none_for_a_model_fitted_on_a_plain_array():
    est = LogisticRegression().fit(np.array([[0.0, 1.0], [1.0, 0.0]]), [0, 1])
    assert infer_signature(est) is None
    assert infer_signature(est, pd.DataFrame({"a": [1.0], "b": [2.0]})) is None
    assert column_hints(est) == {}


def test_a_bare_estimator_fitted_on_a_frame():
    est = StandardScaler().fit(pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]}))
    assert infer_signature(est) == {"columns": True, "inputs": [{"name": "a", "datatype": "FP64"},
                                                                {"name": "b", "datatype": "FP64"}]}


@pytest.mark.parametrize("series,datatype", [
    (pd.Series([1.5]), "FP64"), (pd.Series([1], dtype="int32"), "INT64"), (pd.Series([1], dtype="Int64"), "INT64"),
    (pd.Series([True]), "BOOL"), (pd.Series([True], dtype="boolean"), "BOOL"), (pd.Series(["a"]), "BYTES"),
    (pd.Series(["a"], dtype="category"), "BYTES"), (pd.Series(["a"], dtype=object), "BYTES"),
    (pd.Series([1], dtype="uint8"), "INT64"),
])
def test_dtypes_map_to_v2_datatypes(series, datatype):
    assert datatype_of_dtype(series.dtype) == datatype


def test_unsupported_dtype_names_the_column():
    with pytest.raises(ValueError, match="column 'when': dtype datetime64"):
        datatype_of_dtype(pd.Series(pd.to_datetime(["2024-01-01"])).dtype, "when")


@pytest.mark.parametrize("sig,fragment", [
    ([1], "must be a JSON object"),
    ({"inputs": []}, "'inputs' must be a non-empty list"),
    ({"inputs": [{"name": "a", "datatype": "FP64"}], "colums": True}, "unknown signature key(s) 'colums'"),
    ({"columns": "yes", "inputs": [{"name": "a", "datatype": "FP64"}]}, "'columns' must be true or false"),
    ({"inputs": [{"name": "a", "datatype": "STRING"}]}, "inputs[0] ('a').datatype must be one of FP64, INT64"),
    ({"inputs": [{"name": "", "datatype": "FP64"}]}, "inputs[0].name must be a non-empty string"),
    ({"inputs": [{"name": "a", "datatype": "FP64"}, {"name": "a", "datatype": "BOOL"}]},
     "inputs[1].name 'a' appears twice"),
    ({"inputs": [{"name": "a", "datatype": "FP64", "shape": [1]}]}, "exactly 'name' and 'datatype'"),
])
def test_validate_signature_one_clear_line(sig, fragment):
    with pytest.raises(ValueError) as err:
        validate_signature(sig, "sig.json")
    msg = str(err.value)
    assert msg.startswith("sig.json: ") and fragment in msg and "\n" not in msg


def test_validate_signature_normalizes():
    assert validate_signature({"inputs": [{"name": "a", "datatype": "BYTES"}]}, "x") == {
        "columns": True, "inputs": [{"name": "a", "datatype": "BYTES"}]}
    frame, est = make_iris_pipeline("classifier")
    sig = infer_signature(est, frame)
    assert validate_signature(sig, "meta.json") == sig


def test_metadata_inputs_and_outputs():
    assert metadata_inputs(None, 4) == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    sig = {"columns": True, "inputs": EXPECTED[3:5]}
    assert metadata_inputs(sig, 2) == [{"name": "petal_width_mm", "datatype": "INT64", "shape": [-1, 1]},
                                       {"name": "size", "datatype": "BYTES", "shape": [-1, 1]}]
    three = ("predict", "predict_proba", "decision_function")
    outs = metadata_outputs(three, np.array(["a", "b", "c"], dtype=object))
    assert outs == [{"name": "predict", "datatype": "BYTES", "shape": [-1]},
                    {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
                    {"name": "decision_function", "datatype": "FP64", "shape": [-1, 3]}]
    assert metadata_outputs(three, np.array([0, 1]))[0]["datatype"] == "INT64"
    assert metadata_outputs(three, np.array([0, 1]))[2]["shape"] == [-1]
    assert metadata_outputs(("predict",), np.array([])) == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]


def test_iris_frame_has_every_datatype():
    frame, species, _ = iris_frame()
    assert set(species) == {"setosa", "versicolor", "virginica"}
    assert sorted(frame["size"].unique()) == ["high", "low", "mid"]
