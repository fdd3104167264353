"""Open Inference Protocol (V2) requests and responses, as pure functions.

Parsing is hand-written over what the JSON parser returns: a validation
framework would cost more per request than the model's predict does.

Two request shapes: one 2-D tensor for a numeric model (the hot path, kept
here), or one tensor per column for a model with a signature (columns.py).
Either may carry its data as binary after the JSON (binary.py).
"""
import math
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from swarmml_model_service import binary, columns
from swarmml_model_service.binary import BinaryReader
from swarmml_model_service.errors import BadRequest
from swarmml_model_service.signature import metadata_inputs, metadata_outputs

__all__ = ["BadRequest", "InferRequest", "parse_request", "parse_infer", "encode_response", "model_metadata"]


# V2 datatype -> (numpy dtype, numpy kinds accepted from JSON)
DATATYPES = {
    "BOOL": (np.bool_, "b"),
    "UINT8": (np.uint8, "iu"), "UINT16": (np.uint16, "iu"), "UINT32": (np.uint32, "iu"), "UINT64": (np.uint64, "iu"),
    "INT8": (np.int8, "iu"), "INT16": (np.int16, "iu"), "INT32": (np.int32, "iu"), "INT64": (np.int64, "iu"),
    "FP16": (np.float16, "iuf"), "FP32": (np.float32, "iuf"), "FP64": (np.float64, "iuf"),
    "BYTES": (None, None),
}
# What a plain classifier answers; a model's own list comes from the methods its estimator has.
OUTPUTS = ("predict", "predict_proba")
ALL_OUTPUTS = ("predict", "predict_proba", "decision_function")
NUMPY_TO_V2 = {"b": "BOOL", "i": "INT64", "u": "UINT64", "f": "FP64", "U": "BYTES", "S": "BYTES", "O": "BYTES"}


_NO_PARAMS: dict = {}
_JSON_PREDICT = (("predict",), frozenset())
_BINARY_PREDICT = (("predict",), frozenset(("predict",)))


@dataclass(slots=True)
class InferRequest:
    payload: Union[np.ndarray, dict]  # rows [n, n_features] float64, or {column: 1-D array} in signature order
    n_rows: int
    outputs: tuple                    # output names, in the order asked
    binary_outputs: frozenset         # outputs to send as binary tensor data
    req_id: Optional[str]


def parse_request(body: object, tail: Optional[memoryview], n_features: int, sig: Optional[dict] = None,
                  available: tuple = OUTPUTS) -> InferRequest:
    """Validate an infer request (its JSON and any binary tail) for a model; a BadRequest says what is wrong.

    A model with a signature takes one tensor per column, by name. A model
    without one takes one 2-D tensor (any name, as MLServer's sklearn runtime),
    or one numeric tensor per feature in feature order.
    """
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("'inputs' must be a non-empty list of tensors")
    req_id = body.get("id")
    if req_id is not None and not isinstance(req_id, str):
        raise BadRequest("'id' must be a string")
    params = body.get("parameters")
    if params is None:
        params = _NO_PARAMS
    elif not isinstance(params, dict):
        raise BadRequest("'parameters' must be an object")
    reader = BinaryReader(tail) if tail is not None else None
    if sig is not None:
        payload, n_rows = columns.parse_columns(inputs, sig, reader)
    elif len(inputs) == 1 and params.get("content_type") != "pd":
        payload = parse_tensor(inputs[0], n_features, "inputs[0]", reader)
        n_rows = len(payload)
    else:
        payload = columns.parse_numeric_columns(inputs, n_features, reader)
        n_rows = len(payload)
    if reader is not None:
        reader.check_consumed()
    outputs, binary_outputs = parse_outputs(body.get("outputs"), available, params.get("binary_data_output") is True)
    return InferRequest(payload, n_rows, outputs, binary_outputs, req_id)


def parse_infer(body: object, n_features: int) -> tuple:
    """(rows: float64 array [n, n_features], outputs, request id) of a JSON request to a numeric model."""
    req = parse_request(body, None, n_features)
    return req.payload, req.outputs, req.req_id


def parse_outputs(outputs: object, available: tuple = OUTPUTS, binary_default: bool = False) -> tuple:
    """(names, names to send binary): binary per output's parameters.binary_data, else the request's default."""
    if outputs is None:  # the common case: answers of shared constants cost nothing per request
        return _BINARY_PREDICT if binary_default else _JSON_PREDICT
    if not isinstance(outputs, list) or not outputs:
        raise BadRequest("'outputs' must be a non-empty list of {\"name\": ...}")
    names, binary_names = [], set()
    for i, out in enumerate(outputs):
        name = out.get("name") if isinstance(out, dict) else None
        if name not in available:
            raise BadRequest(f"outputs[{i}].name: the model has no output {name!r} (it has {', '.join(available)})")
        params = out.get("parameters") or {}
        if not isinstance(params, dict):
            raise BadRequest(f"outputs[{i}].parameters: expected an object")
        if params.get("binary_data", binary_default) is True:
            binary_names.add(name)
        names.append(name)
    return tuple(dict.fromkeys(names)), frozenset(binary_names)


def parse_tensor(tensor, n_features, where, reader=None):
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
    size = math.prod(shape)
    params = tensor.get("parameters")
    if params and isinstance(params, dict) and "binary_data_size" in params:
        chunk = (reader or BinaryReader(None)).take(params["binary_data_size"], where)
        arr = binary.decode_numbers(chunk, datatype, size, where)
        if size == 0:
            raise BadRequest(f"{where}: empty input")
    else:
        if not isinstance(data, list):
            raise BadRequest(f"{where}.data: expected a list")
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
        if datatype in ("FP16", "FP32") or datatype.startswith(("INT", "UINT")):
            arr = _cast_checked(arr, dtype, datatype, where)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise BadRequest(f"{where}.data: NaN or infinity is not a valid feature value")
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


def output_tensor(name: str, values: np.ndarray, with_data: bool = True) -> dict:
    """A V2 output tensor for a numpy result (predict: [n], predict_proba: [n, classes]).

    String class labels (numpy str or object arrays) are BYTES; unsigned labels
    are sent as INT64, as the model metadata says.
    """
    kind = values.dtype.kind
    datatype = "INT64" if kind == "u" else NUMPY_TO_V2.get(kind, "FP64")
    tensor = {"name": name, "shape": list(values.shape), "datatype": datatype}
    if with_data:
        data = values.ravel().tolist()
        if kind == "O":
            data = [v if isinstance(v, str) else str(v) for v in data]
        tensor["data"] = data
    return tensor


def infer_response(model, version, req_id, outputs):
    resp = {"model_name": model, "model_version": version, "outputs": outputs}
    if req_id is not None:
        resp["id"] = req_id
    return resp


def encode_response(model: str, version: str, req: InferRequest, results: dict, dumps) -> tuple:
    """(body bytes, JSON header length or None): outputs asked as binary follow the JSON, in output order."""
    tensors, blobs = [], []
    for name in req.outputs:
        values = results[name]
        if name in req.binary_outputs:
            tensor = output_tensor(name, values, with_data=False)
            blob = binary.encode_values(values, tensor["datatype"])
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor = output_tensor(name, values)
        tensors.append(tensor)
    header = dumps(infer_response(model, version, req.req_id, tensors))
    if not blobs:
        return header, None
    return b"".join([header, *blobs]), len(header)


def model_metadata(name: str, version: str, n_features: int, classes: np.ndarray, sig: Optional[dict] = None,
                   available: tuple = OUTPUTS) -> dict:
    return {
        "name": name,
        "versions": [version],
        "platform": "sklearn",
        "inputs": metadata_inputs(sig, n_features),
        "outputs": metadata_outputs(available, classes),
    }
