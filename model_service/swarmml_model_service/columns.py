"""Requests with one tensor per column (MLServer's pandas codec), checked against a model's signature.

A column travels as a 1-D numpy array from parsing through batching (where
columns of several requests are concatenated) to predict, where one pandas
DataFrame is built per batch: the frame's fixed cost is paid once per batch,
not once per request.
"""
from typing import Optional

import numpy as np

from swarmml_model_service.binary import WIRE_DTYPES, BinaryReader, decode_numbers, decode_strings
from swarmml_model_service.errors import BadRequest

NUMERIC = frozenset(WIRE_DTYPES) - {"BOOL"}
_KIND_NAMES = {"U": "strings", "S": "strings", "b": "booleans", "f": "floats", "i": "integers",
               "u": "integers", "O": "nulls or mixed values"}
# Values a column of each signature datatype accepts, by numpy kind of what arrived.
_ACCEPTS = {"FP64": "iuf", "INT64": "iu"}
_DTYPES = {"FP64": np.float64, "INT64": np.int64, "BOOL": np.bool_}


def parse_columns(inputs: list, sig: dict, reader: Optional[BinaryReader]) -> tuple:
    """({column: 1-D array} in the signature's order, rows) for a request with one tensor per column."""
    wanted = {i["name"]: i["datatype"] for i in sig["inputs"]}
    got: dict = {}
    for i, tensor in enumerate(inputs):
        if not isinstance(tensor, dict):
            raise BadRequest(f"inputs[{i}]: must be an object with name, shape, datatype and data")
        name = tensor.get("name")
        if not isinstance(name, str):
            raise BadRequest(f"inputs[{i}].name: expected a column name")
        if name not in wanted:
            raise BadRequest(f"unknown column {name!r} (the model takes {_listing(wanted)})")
        if name in got:
            raise BadRequest(f"column {name!r} is sent twice")
        got[name] = coerce(name, wanted[name], *read_column(tensor, name, reader))
    missing = [n for n in wanted if n not in got]
    if missing:
        raise BadRequest(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
                         f"(the model takes {_listing(wanted)})")
    cols = {n: got[n] for n in wanted}
    return cols, _rows(list(cols.items()))


def parse_numeric_columns(inputs: list, n_features: int, reader: Optional[BinaryReader]) -> np.ndarray:
    """Rows [n, n_features] from one numeric tensor per feature, in request order (a model without a signature)."""
    if len(inputs) != n_features:
        raise BadRequest(f"expected 1 input tensor [rows, {n_features}], or {n_features} tensors of one column "
                         f"each; got {len(inputs)}")
    cols = []
    for i, tensor in enumerate(inputs):
        if not isinstance(tensor, dict):
            raise BadRequest(f"inputs[{i}]: must be an object with name, shape, datatype and data")
        name = tensor.get("name")
        label = name if isinstance(name, str) else f"inputs[{i}]"
        cols.append((label, coerce(label, "FP64", *read_column(tensor, label, reader))))
    _rows(cols)
    return np.column_stack([v for _, v in cols])


def read_column(tensor: dict, name: str, reader: Optional[BinaryReader]) -> tuple:
    """(datatype sent, values: numpy array, or list of str for BYTES) of one column tensor, shape checked."""
    where = f"column {name!r}"
    datatype, shape = tensor.get("datatype"), tensor.get("shape")
    if datatype != "BYTES" and datatype not in WIRE_DTYPES:
        raise BadRequest(f"{where}: unknown datatype {datatype!r}")
    if (not isinstance(shape, list) or not 1 <= len(shape) <= 2 or (len(shape) == 2 and shape[1] != 1)
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise BadRequest(f"{where}: shape must be [rows] or [rows, 1], got {shape!r}")
    rows = shape[0]
    params = tensor.get("parameters") or {}
    if not isinstance(params, dict):
        raise BadRequest(f"{where}.parameters: expected an object")
    if params.get("content_type") == "pd_json":
        raise BadRequest(f"{where}: content_type pd_json (a column of mixed types) is not supported; "
                         "send numbers, booleans or strings")
    if "binary_data_size" in params:
        chunk = (reader or BinaryReader(None)).take(params["binary_data_size"], where)
        values = decode_strings(chunk, where) if datatype == "BYTES" else decode_numbers(chunk, datatype, rows, where)
    else:
        values = _json_values(tensor.get("data"), datatype, where)
    if len(values) != rows:
        raise BadRequest(f"{where}: shape {shape} holds {rows} values, data has {len(values)}")
    if rows == 0:
        raise BadRequest(f"{where}: empty input")
    return datatype, values


def _json_values(data: object, datatype: str, where: str):
    if not isinstance(data, list):
        raise BadRequest(f"{where}.data: expected a list")
    if data and isinstance(data[0], list):  # [[v], [v], ...] for shape [rows, 1]
        if not all(isinstance(d, list) and len(d) == 1 for d in data):
            raise BadRequest(f"{where}.data: nested rows must hold one value each")
        data = [d[0] for d in data]
    if datatype == "BYTES":
        return data  # element types are checked against the signature in coerce()
    return np.asarray(data)


def coerce(name: str, want: str, sent: str, values) -> np.ndarray:
    """The column as the dtype its signature declares; a 400 naming the column when it can't be."""
    where = f"column {name!r}"
    if want == "BYTES":
        if sent != "BYTES":
            raise BadRequest(f"{where}: expected BYTES (strings), got datatype {sent}")
        if not all(type(v) is str for v in values):
            bad = next(v for v in values if type(v) is not str)
            raise BadRequest(f"{where}: expected strings, got {type(bad).__name__} {bad!r}")
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        return arr
    if sent == "BYTES":
        raise BadRequest(f"{where}: expected {want} {'numbers' if want != 'BOOL' else 'booleans'}, "
                         f"got BYTES (strings)")
    if want == "BOOL" and sent != "BOOL" or want == "INT64" and sent.startswith("FP"):
        raise BadRequest(f"{where}: expected datatype {want}, got {sent}")
    # BOOL into a number column is cast to 0/1: a signature guessed from the pipeline alone
    # calls a bool training column FP64, and MLServer's codec sends that column as BOOL.
    accepted = "b" if sent == "BOOL" else _ACCEPTS[want]
    arr = values
    if arr.dtype.kind not in accepted:
        raise BadRequest(f"{where}: data holds {_KIND_NAMES.get(arr.dtype.kind, str(arr.dtype))} "
                         f"where {sent} values are expected")
    if sent in NUMERIC and arr.dtype.kind != "b":
        _check_range(arr, sent, where)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise BadRequest(f"{where}: NaN or infinity is not a valid feature value")
    return arr.astype(_DTYPES[want], copy=False)


def _check_range(arr: np.ndarray, sent: str, where: str) -> None:
    # JSON numbers arrive as int64/float64: values past the declared type are a client bug worth naming.
    dtype = WIRE_DTYPES[sent]
    if arr.dtype == dtype:  # binary data, or JSON for FP64/INT64: nothing can be out of range
        return
    if dtype.kind in "iu" and arr.dtype.kind == "f":
        raise BadRequest(f"{where}: data holds floats where {sent} values are expected")
    info = np.iinfo(dtype) if dtype.kind in "iu" else np.finfo(dtype)
    if arr.size and (arr.min() < info.min or arr.max() > info.max):
        raise BadRequest(f"{where}: values out of range for {sent}")


def _rows(cols: list) -> int:
    """The common row count of [(name, values)]; a 400 naming two columns that differ."""
    first, n = cols[0][0], len(cols[0][1])
    for name, values in cols[1:]:
        if len(values) != n:
            raise BadRequest(f"columns differ in length: {first!r} has {n} rows, {name!r} has {len(values)}")
    return n


def _listing(wanted: dict) -> str:
    names = list(wanted)  # a wide frame would make the one-line error unreadable: show the first dozen
    return ", ".join(names[:12]) + (f", … ({len(names)} in all)" if len(names) > 12 else "")


def concat(parts: list) -> dict:
    """Columns of several requests, one array per column (the batcher's merge for column models)."""
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def to_model_input(cols: dict, sig: dict):
    """What predict gets: a DataFrame in signature order, or a 2-D array for a model fitted without names."""
    if sig["columns"]:
        import pandas as pd  # only models with a column signature pay for pandas
        # Strings stay object dtype, as encoders saw them at fit: pandas 3 would otherwise scan every
        # value of the batch to infer its str dtype, only for scikit-learn to convert it back.
        return pd.DataFrame({n: pd.Series(v, dtype=object, copy=False) if v.dtype == object else v
                             for n, v in cols.items()}, copy=False)
    values = list(cols.values())
    if any(v.dtype == object for v in values):
        return np.column_stack([v.astype(object) for v in values])
    return np.column_stack(values).astype(np.float64, copy=False)
