"""A model's input signature: which named columns it takes, with which V2 datatypes.

Pure: no I/O and no pandas import. The build side imports this module on the
host to record a signature in meta.json; the server reads it back, so both
sides share one definition. Layout (see meta.json):

    {"columns": true, "inputs": [{"name": "age", "datatype": "FP64"}, ...]}

"columns": true means the estimator was fitted on a DataFrame (it has
feature_names_in_), so predict gets a DataFrame in this column order.
"""
from typing import Any, Optional

# The datatypes a signature may declare. Requests may send other V2 numeric
# types for a numeric column; the server casts them.
SIGNATURE_DATATYPES = ("FP64", "INT64", "BOOL", "BYTES")

# Estimator attributes whose object-dtype values mean "this column holds strings".
_STRING_ATTRS = ("categories_", "statistics_")


def infer_signature(estimator: Any, sample: Any = None) -> Optional[dict]:
    """The signature of a fitted estimator, or None for a model fitted on a plain array.

    sample: an optional pandas DataFrame shaped like the training frame; its
    dtypes give the datatypes. Without it they are guessed from the fitted
    pipeline: columns an encoder learnt string categories for are BYTES,
    all others FP64.
    """
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return None
    names = [str(n) for n in names]
    if sample is not None:
        missing = [n for n in names if n not in sample.columns]
        if missing:
            raise ValueError(f"the sample frame lacks column(s) the model was fitted on: {', '.join(missing)}")
        datatypes = [datatype_of_dtype(sample[n].dtype, n) for n in names]
    else:
        guessed = column_hints(estimator)
        datatypes = ["BYTES" if guessed.get(n, (False,))[0] else "FP64" for n in names]
    return {"columns": True, "inputs": [{"name": n, "datatype": d} for n, d in zip(names, datatypes)]}


def datatype_of_dtype(dtype: Any, column: str = "?") -> str:
    """The V2 datatype for a numpy or pandas dtype (pandas' nullable and string dtypes included)."""
    kind = getattr(dtype, "kind", None)
    if kind == "f":
        return "FP64"
    if kind in ("i", "u"):
        return "INT64"
    if kind == "b":
        return "BOOL"
    if kind in ("O", "U", "S"):  # object, str, pandas' string and category dtypes
        return "BYTES"
    raise ValueError(f"column {column!r}: dtype {dtype} has no V2 datatype (use numbers, booleans or strings)")


def column_hints(estimator: Any) -> dict:
    """{column name: (takes strings, a category the model knows or None)} from a fitted pipeline.

    Walks to what first sees the raw columns: a Pipeline's first step, a
    ColumnTransformer's transformers (through nested pipelines). Columns not
    mentioned are absent. The known category lets the server warm up a model
    with a value its encoder accepts.
    """
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return {}
    hints: dict = {}
    _walk(estimator, [str(n) for n in names], hints)
    return hints


def _walk(est: Any, columns: list, hints: dict) -> None:
    steps = getattr(est, "steps", None)
    if steps is not None:  # Pipeline: only its first (non-passthrough) step sees the raw columns
        first = next((s for _, s in steps if s not in (None, "passthrough")), None)
        if first is not None:
            _walk(first, columns, hints)
        return
    transformers = getattr(est, "transformers_", None)
    if transformers is not None:  # fitted ColumnTransformer
        indices = getattr(est, "_transformer_to_input_indices", {})
        for name, trans, cols in transformers:
            if trans in ("drop", "passthrough") or not hasattr(trans, "fit"):
                continue
            picked = [columns[i] for i in indices[name]] if name in indices else _named(cols, columns)
            _walk(trans, picked, hints)
        return
    for attr in _STRING_ATTRS:
        values = getattr(est, attr, None)
        if values is None:
            continue
        per_column = list(values) if attr == "categories_" else [[v] for v in values]
        for col, cats in zip(columns, per_column):
            takes_strings = any(isinstance(c, str) for c in cats)
            known = next((c for c in cats if isinstance(c, str)), None) if takes_strings else None
            hints[col] = (takes_strings, known)
        return


def _named(cols: Any, columns: list) -> list:
    """A ColumnTransformer column spec as names, for estimators without the fitted index map."""
    if isinstance(cols, str):
        return [cols]
    out = []
    for c in cols if isinstance(cols, (list, tuple)) else []:
        if isinstance(c, str):
            out.append(c)
        elif isinstance(c, int) and 0 <= c < len(columns):
            out.append(columns[c])
    return out


def validate_signature(sig: Any, where: str) -> dict:
    """Check a signature read from a file (where names it); return it normalized or raise ValueError (one line)."""
    if not isinstance(sig, dict):
        raise ValueError(f"{where}: a signature must be a JSON object with 'inputs' (and optionally 'columns')")
    unknown = sorted(set(sig) - {"columns", "inputs"})
    if unknown:
        raise ValueError(f"{where}: unknown signature key(s) {', '.join(map(repr, unknown))} "
                         "(expected 'columns' and 'inputs')")
    columns = sig.get("columns", True)
    if not isinstance(columns, bool):
        raise ValueError(f"{where}: 'columns' must be true or false, got {columns!r}")
    inputs = sig.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ValueError(f"{where}: 'inputs' must be a non-empty list of {{\"name\": ..., \"datatype\": ...}}")
    seen = set()
    out = []
    for i, item in enumerate(inputs):
        if not isinstance(item, dict) or set(item) - {"name", "datatype"}:
            raise ValueError(f"{where}: inputs[{i}] must be an object with exactly 'name' and 'datatype'")
        name, datatype = item.get("name"), item.get("datatype")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}: inputs[{i}].name must be a non-empty string, got {name!r}")
        if name in seen:
            raise ValueError(f"{where}: inputs[{i}].name {name!r} appears twice")
        if datatype not in SIGNATURE_DATATYPES:
            raise ValueError(f"{where}: inputs[{i}] ({name!r}).datatype must be one of "
                             f"{', '.join(SIGNATURE_DATATYPES)}, got {datatype!r}")
        seen.add(name)
        out.append({"name": name, "datatype": datatype})
    return {"columns": columns, "inputs": out}


def metadata_inputs(sig: Optional[dict], n_features: int) -> list:
    """The 'inputs' of /v2/models/{name}: one [-1, 1] tensor per column, or today's single 2-D FP64 tensor."""
    if sig is None:
        return [{"name": "input-0", "datatype": "FP64", "shape": [-1, n_features]}]
    return [{"name": i["name"], "datatype": i["datatype"], "shape": [-1, 1]} for i in sig["inputs"]]


def metadata_outputs(available: tuple, classes: Any) -> list:
    """The 'outputs' of /v2/models/{name} for the methods the estimator has.

    classes: the classifier's classes_ (empty for a regressor).
    """
    n_classes = len(classes)
    kind = getattr(getattr(classes, "dtype", None), "kind", "f") if n_classes else "f"
    predict = {"O": "BYTES", "U": "BYTES", "S": "BYTES", "i": "INT64", "u": "INT64", "b": "BOOL"}.get(kind, "FP64")
    specs = {
        "predict": {"name": "predict", "datatype": predict, "shape": [-1]},
        "predict_proba": {"name": "predict_proba", "datatype": "FP64", "shape": [-1, n_classes]},
        # scikit-learn returns one score per row for two classes, one per class otherwise
        "decision_function": {"name": "decision_function", "datatype": "FP64",
                              "shape": [-1] if n_classes <= 2 else [-1, n_classes]},
    }
    return [specs[name] for name in available if name in specs]
