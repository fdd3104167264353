"""Per-column requests, the binary tensor extension and batching of columns: pure, no server."""
import struct

import numpy as np
import pytest

from swarmml_model_service import binary
from swarmml_model_service.batcher import merge
from swarmml_model_service.columns import to_model_input
from swarmml_model_service.protocol import BadRequest, encode_response, parse_request

SIG = {"columns": True, "inputs": [{"name": "age", "datatype": "FP64"}, {"name": "plan", "datatype": "BYTES"},
                                   {"name": "n_calls", "datatype": "INT64"}, {"name": "churned", "datatype": "BOOL"}]}
ALL = ("predict", "predict_proba", "decision_function")


def col(name, datatype, data, shape=None, **params):
    t = {"name": name, "datatype": datatype, "shape": shape or [len(data), 1], "data": data}
    if params:
        t["parameters"] = params
    return t


def good(**over):
    cols = {"age": col("age", "FP64", [30.5, 41.0], content_type="np"),
            "plan": col("plan", "BYTES", ["basic", "pro"], content_type="str"),
            "n_calls": col("n_calls", "INT64", [3, 0]), "churned": col("churned", "BOOL", [False, True])}
    cols.update(over)
    return {"parameters": {"content_type": "pd"}, "inputs": [c for c in cols.values() if c is not None]}


def parse(body, tail=None, sig=SIG, available=ALL):
    return parse_request(body, tail, 4, sig, available)


def test_columns_come_back_typed_in_signature_order_whatever_the_request_order():
    body = good()
    body["inputs"].reverse()
    req = parse(body)
    assert list(req.payload) == ["age", "plan", "n_calls", "churned"] and req.n_rows == 2
    assert req.payload["age"].dtype == np.float64 and req.payload["n_calls"].dtype == np.int64
    assert req.payload["churned"].dtype == np.bool_ and req.payload["plan"].tolist() == ["basic", "pro"]
    frame = to_model_input(req.payload, SIG)
    assert list(frame.columns) == ["age", "plan", "n_calls", "churned"] and frame["plan"].dtype == object


def test_shapes_n_and_n_1_nested_data_and_numeric_types_cast():
    req = parse(good(age=col("age", "INT32", [30, 41], shape=[2]), n_calls=col("n_calls", "INT64", [[3], [0]]),
                     plan=col("plan", "BYTES", [["basic"], ["pro"]])))
    assert req.payload["age"].tolist() == [30.0, 41.0] and req.payload["age"].dtype == np.float64
    assert req.payload["n_calls"].tolist() == [3, 0] and req.payload["plan"].tolist() == ["basic", "pro"]


@pytest.mark.parametrize("body,message", [
    (good(extra=col("extra", "FP64", [1.0, 2.0])),
     "unknown column 'extra' (the model takes age, plan, n_calls, churned)"),
    (good(plan=None), "missing column 'plan' (the model takes age, plan, n_calls, churned)"),
    (good(plan=None, age=None), "missing columns 'age', 'plan'"),
    (good(plan=col("plan", "FP64", [1.0, 2.0])), "column 'plan': expected BYTES (strings), got datatype FP64"),
    (good(plan=col("plan", "BYTES", ["basic", 3])), "column 'plan': expected strings, got int 3"),
    (good(age=col("age", "BYTES", ["30", "41"])), "column 'age': expected FP64 numbers, got BYTES (strings)"),
    (good(age=col("age", "FP64", ["30", "41"])), "column 'age': data holds strings where FP64 values are expected"),
    (good(age=col("age", "FP64", [30.0, None])), "column 'age': data holds nulls or mixed values"),
    (good(n_calls=col("n_calls", "FP64", [1.0, 2.0])), "column 'n_calls': expected datatype INT64, got FP64"),
    (good(churned=col("churned", "INT64", [0, 1])), "column 'churned': expected datatype BOOL, got INT64"),
    (good(churned=col("churned", "BOOL", [0, 1])), "column 'churned': data holds integers where BOOL values"),
    (good(age=col("age", "FP64", [30.0, 41.0, 50.0])), "columns differ in length: 'age' has 3 rows, 'plan' has 2"),
    (good(age=col("age", "FP64", [30.0, 41.0], shape=[1, 2])), "column 'age': shape must be [rows] or [rows, 1]"),
    (good(age=col("age", "FP64", [30.0, 41.0], shape=[3, 1])), "column 'age': shape [3, 1] holds 3 values, data has 2"),
    (good(age=col("age", "FP64", [30.0, float("inf")])), "column 'age': NaN or infinity"),
    (good(age=col("age", "FP99", [30.0, 41.0])), "column 'age': unknown datatype 'FP99'"),
    (good(n_calls=col("n_calls", "INT8", [3, 300])), "column 'n_calls': values out of range for INT8"),
    (good(age=col("age", "BYTES", ["{}", "1"], content_type="pd_json")), "column 'age': content_type pd_json"),
    ({**good(), "outputs": [{"name": "predict_log_proba"}]},
     "outputs[0].name: the model has no output 'predict_log_proba' (it has predict, predict_proba, decision_function)"),
])
def test_bad_column_requests_name_the_column(body, message):
    with pytest.raises(BadRequest) as err:
        parse(body)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bool_into_a_number_column_is_cast_as_for_a_signature_guessed_from_the_pipeline():
    req = parse(good(age=col("age", "BOOL", [True, False]), n_calls=col("n_calls", "BOOL", [False, True])))
    assert req.payload["age"].tolist() == [1.0, 0.0] and req.payload["age"].dtype == np.float64
    assert req.payload["n_calls"].tolist() == [0, 1] and req.payload["n_calls"].dtype == np.int64
    with pytest.raises(BadRequest, match="column 'age': data holds booleans where FP64 values are expected"):
        parse(good(age=col("age", "FP64", [True, False])))


def test_duplicate_column_is_refused():
    body = good()
    body["inputs"].append(body["inputs"][0])
    with pytest.raises(BadRequest, match="column 'age' is sent twice"):
        parse(body)


def test_outputs_the_model_lacks_are_refused_by_name():
    with pytest.raises(BadRequest, match="no output 'predict_proba' \\(it has predict\\)"):
        parse({**good(), "outputs": [{"name": "predict_proba"}]}, available=("predict",))


def test_numeric_model_takes_one_tensor_per_feature_in_order():
    body = {"parameters": {"content_type": "pd"},
            "inputs": [col(f"f{i}", "FP64", [float(i), float(i + 10)]) for i in range(4)]}
    req = parse_request(body, None, 4)
    assert req.payload.tolist() == [[0, 1, 2, 3], [10, 11, 12, 13]] and req.n_rows == 2
    with pytest.raises(BadRequest,
                       match="expected 1 input tensor \\[rows, 4\\], or 4 tensors of one column each; got 3"):
        parse_request({"inputs": body["inputs"][:3]}, None, 4)
    with pytest.raises(BadRequest, match="column 'f1': expected FP64 numbers, got BYTES"):
        parse_request({"inputs": [body["inputs"][0], col("f1", "BYTES", ["a", "b"])] + body["inputs"][2:]}, None, 4)


def strings_wire(values):
    return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)


def binary_request(sig=SIG):
    parts = [np.array([30.5, 41.0]).tobytes(), strings_wire(["basic", "pró"]),
             np.array([3, 0], dtype="<i8").tobytes(), np.array([False, True]).tobytes()]
    names = [i["name"] for i in sig["inputs"]]
    types = [i["datatype"] for i in sig["inputs"]]
    inputs = [{"name": n, "datatype": t, "shape": [2, 1], "parameters": {"binary_data_size": len(p)}}
              for n, t, p in zip(names, types, parts)]
    return {"inputs": inputs}, memoryview(b"".join(parts))


def test_binary_columns_decode_like_json():
    body, tail = binary_request()
    req = parse(body, tail)
    assert req.payload["age"].tolist() == [30.5, 41.0] and req.payload["plan"].tolist() == ["basic", "pró"]
    assert req.payload["n_calls"].tolist() == [3, 0] and req.payload["churned"].tolist() == [False, True]


def test_binary_sizes_are_checked():
    body, tail = binary_request()
    with pytest.raises(BadRequest, match="bytes after the binary tensors belong to no input"):
        parse(body, memoryview(bytes(tail) + b"xx"))
    with pytest.raises(BadRequest, match="runs past the end of the body"):
        parse(body, tail[:-1])
    body["inputs"][0]["parameters"]["binary_data_size"] = 8
    with pytest.raises(BadRequest, match="column 'age': 2 FP64 values need 16 bytes, binary_data_size is 8"):
        parse(body, tail)
    with pytest.raises(BadRequest, match="no Inference-Header-Content-Length header"):
        parse(binary_request()[0], None)


def test_binary_2d_tensor_for_a_numeric_model():
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
    body = {"inputs": [{"name": "input-0", "datatype": "FP32", "shape": [2, 4],
                        "parameters": {"binary_data_size": rows.nbytes}}]}
    req = parse_request(body, memoryview(rows.tobytes()), 4)
    assert req.payload.dtype == np.float64 and np.allclose(req.payload, rows)


def test_split_body_and_header():
    assert binary.split_body(b"abc", None) == (b"abc", None)
    head, tail = binary.split_body(b'{"a":1}XYZ', 7)
    assert bytes(head) == b'{"a":1}' and bytes(tail) == b"XYZ"
    with pytest.raises(BadRequest, match="Inference-Header-Content-Length is 99"):
        binary.split_body(b"{}", 99)
    with pytest.raises(BadRequest, match="must be a byte count"):
        binary.header_length(b"ten")


def test_binary_outputs_per_output_and_request_wide():
    import orjson
    body = {**good(), "outputs": [{"name": "predict", "parameters": {"binary_data": True}}, {"name": "predict_proba"}]}
    req = parse(body)
    assert req.outputs == ("predict", "predict_proba") and req.binary_outputs == {"predict"}
    results = {"predict": np.array(["yes", "no"], dtype=object), "predict_proba": np.array([[0.25, 0.75], [1, 0]])}
    out, n = encode_response("m", "1", req, results, orjson.dumps)
    header = orjson.loads(out[:n])
    assert header["outputs"][0] == {"name": "predict", "shape": [2], "datatype": "BYTES",
                                    "parameters": {"binary_data_size": 4 + 3 + 4 + 2}}
    assert header["outputs"][1]["data"] == [0.25, 0.75, 1.0, 0.0]
    assert out[n:] == strings_wire(["yes", "no"])
    # request-wide default, with one output opting out
    body = {**good(), "parameters": {"binary_data_output": True},
            "outputs": [{"name": "predict"}, {"name": "predict_proba", "parameters": {"binary_data": False}}]}
    assert parse(body).binary_outputs == {"predict"}
    # tritonclient asks for no outputs and binary_data_output: the default output, binary
    assert parse({**good(), "parameters": {"binary_data_output": True}}).binary_outputs == {"predict"}
    req = parse({**good(), "outputs": [{"name": "predict_proba", "parameters": {"binary_data": True}}]})
    out, n = encode_response("m", "1", req, results, orjson.dumps)
    assert np.frombuffer(out[n:], dtype="<f8").tolist() == [0.25, 0.75, 1.0, 0.0]


def test_json_only_response_has_no_header_length():
    import orjson
    req = parse(good())
    out, n = encode_response("m", "1", req, {"predict": np.array([1, 2], dtype=np.uint8)}, orjson.dumps)
    assert n is None and orjson.loads(out)["outputs"] == [{"name": "predict", "shape": [2], "datatype": "INT64",
                                                           "data": [1, 2]}]


def test_batches_merge_rows_and_columns():
    assert merge([np.ones((1, 4)), np.zeros((2, 4))]).shape == (3, 4)
    a, b = parse(good()).payload, parse(good()).payload
    merged = merge([a, b])
    assert list(merged) == list(a) and merged["plan"].tolist() == ["basic", "pro", "basic", "pro"]
    assert merged["age"].dtype == np.float64 and merged["plan"].dtype == object


def test_all_fp64_column_model_also_takes_one_2d_tensor():
    sig = {"columns": True, "inputs": [{"name": "a", "datatype": "FP64"}, {"name": "b", "datatype": "FP64"}]}
    req = parse_request({"inputs": [{"name": "input-0", "shape": [2, 2], "datatype": "FP64",
                                     "data": [[1, 2], [3, 4]]}]}, None, 2, sig, ALL)
    assert list(req.payload) == ["a", "b"] and req.payload["b"].tolist() == [2.0, 4.0] and req.n_rows == 2
    with pytest.raises(BadRequest, match="expects 2 features per row, got 3"):
        parse_request({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]},
                      None, 2, sig, ALL)
    # with a string column there is no such shortcut: the tensor's name must be a column
    with pytest.raises(BadRequest, match="unknown column 'input-0'"):
        parse({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]})


def test_columns_false_signature_makes_a_2d_array():
    sig = {"columns": False, "inputs": [{"name": "a", "datatype": "FP64"}, {"name": "b", "datatype": "INT64"}]}
    req = parse({"inputs": [col("a", "FP64", [1.5, 2.5]), col("b", "INT64", [1, 2])]}, sig=sig)
    X = to_model_input(req.payload, sig)
    assert X.dtype == np.float64 and X.tolist() == [[1.5, 1.0], [2.5, 2.0]]
