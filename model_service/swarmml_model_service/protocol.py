"""Open Inference Protocol (V2) requests and responses, as pure functions.

Parsing is hand-written over what the JSON parser returns: a validation
framework would cost more per request than the model's predict does.
"""
import math

import numpy as np


class BadRequest(ValueError):
    """The request is wrong; the message says what and where (a 400)."""


# V2 datatype -> (numpy dtype, numpy kinds accepted from JSON)
DATATYPES = {
    "BOOL": (np.bool_, "b"),
    "UINT8": (np.uint8, "iu"), "UINT16": (np.uint16, "iu"), "UINT32": (np.uint32, "iu"), "UINT64": (np.uint64, "iu"),
    "INT8": (np.int8, "iu"), "INT16": (np.int16, "iu"), "INT32": (np.int32, "iu"), "INT64": (np.int64, "iu"),
    "FP16": (np.float16, "iuf"), "FP32": (np.float32, "iuf"), "FP64": (np.float64, "iuf"),
    "BYTES": (None, None),
}
OUTPUTS = ("predict", "predict_proba")
NUMPY_TO_V2 = {"b": "BOOL", "i": "INT64", "u": "UINT64", "f": "FP64"}


def parse_infer(body, n_features):
    """Validate an infer request dict; return (rows: float64 array [n, n_features], outputs, request id)."""
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("'inputs' must be a non-empty list of tensors")
    if len(inputs) != 1:
        # One input per model, as MLServer's sklearn runtime: its name does not matter.
        raise BadRequest(f"expected 1 input tensor, got {len(inputs)}")
    rows = parse_tensor(inputs[0], n_features, "inputs[0]")
    req_id = body.get("id")
    if req_id is not None and not isinstance(req_id, str):
        raise BadRequest("'id' must be a string")
    return rows, parse_outputs(body.get("outputs")), req_id


def parse_outputs(outputs):
    if outputs is None:
        return ("predict",)
    if not isinstance(outputs, list) or not outputs:
        raise BadRequest("'outputs' must be a non-empty list of {\"name\": ...}")
    names = []
    for i, out in enumerate(outputs):
        name = out.get("name") if isinstance(out, dict) else None
        if name not in OUTPUTS:
            raise BadRequest(f"outputs[{i}].name: expected one of {', '.join(OUTPUTS)}, got {name!r}")
        names.append(name)
    return tuple(dict.fromkeys(names))


def parse_tensor(tensor, n_features, where):
    if not isinstance(tensor, dict):
        raise BadRequest(f"{where}: must be an object with name, shape, datatype and data")
    shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
    if not isinstance(tensor.get("name"), str):
        raise BadRequest(f"{where}.name: expected a string")
    if datatype not in DATATYPES:
        raise BadRequest(f"{where}.datatype: unknown datatype {datatype!r}")
    dtype, kinds = DATATYPES[datatype]
    if dtype is None:
        raise BadRequest(f"{where}.datatype: BYTES is not supported by numeric scikit-learn models")
    if (not isinstance(shape, list) or not shape or len(shape) > 2
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise BadRequest(f"{where}.shape: expected [rows, features] of non-negative integers, got {shape!r}")
    if not isinstance(data, list):
        raise BadRequest(f"{where}.data: expected a list")
    size = math.prod(shape)
    if size == 0 or not data:
        raise BadRequest(f"{where}: empty input")
    try:
        arr = np.asarray(data)
    except ValueError:
        raise BadRequest(f"{where}.data: ragged nested lists") from None
    if arr.dtype.kind not in kinds:
        raise BadRequest(f"{where}.data: values do not match datatype {datatype} (got {_kind_name(arr)})")
    if arr.size != size:
        raise BadRequest(f"{where}: shape {shape} holds {size} values, data has {arr.size}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise BadRequest(f"{where}.data: NaN or infinity is not a valid feature value")
    if datatype in ("FP16", "FP32") or datatype.startswith(("INT", "UINT")):
        arr = _cast_checked(arr, dtype, datatype, where)
    rows = arr.reshape(-1, shape[-1]) if len(shape) == 2 else arr.reshape(1, -1)
    if rows.shape[1] != n_features:
        raise BadRequest(f"{where}.shape: the model expects {n_features} features per row, got {rows.shape[1]}")
    return rows.astype(np.float64, copy=False)


def _cast_checked(arr, dtype, datatype, where):
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else np.finfo(dtype)
    if arr.size and (arr.min() < info.min or arr.max() > info.max):
        raise BadRequest(f"{where}.data: values out of range for {datatype}")
    return arr.astype(dtype)


def _kind_name(arr):
    return {"U": "strings", "b": "booleans", "f": "floats", "i": "integers", "O": "mixed values"}.get(
        arr.dtype.kind, str(arr.dtype))


def output_tensor(name, values):
    """A V2 output tensor for a numpy result (predict: [n], predict_proba: [n, classes])."""
    if values.dtype.kind in "US":
        datatype = "BYTES"
    else:
        datatype = NUMPY_TO_V2.get(values.dtype.kind, "FP64")
    return {"name": name, "shape": list(values.shape), "datatype": datatype, "data": values.ravel().tolist()}


def infer_response(model, version, req_id, outputs):
    resp = {"model_name": model, "model_version": version, "outputs": outputs}
    if req_id is not None:
        resp["id"] = req_id
    return resp


def model_metadata(name, version, n_features, classes):
    return {
        "name": name,
        "versions": [version],
        "platform": "sklearn",
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, n_features]}],
        "outputs": [
            {"name": "predict", "datatype": "INT64" if classes.dtype.kind in "iu" else "FP64", "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(classes)]},
        ],
    }
