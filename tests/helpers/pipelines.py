"""Real scikit-learn pipelines fitted on DataFrames, written as the model service loads them.

    frame, estimator = write_pipeline_model(models_dir, "iris-pipeline")                  # string labels
    frame, estimator = write_pipeline_model(models_dir, "iris-width", kind="regressor")   # FP64 predictions

The frame has one column of each signature datatype: FP64 measurements,
petal_width_mm (INT64), size (BYTES: petal length binned into low/mid/high)
and wide_sepal (BOOL). The directory layout is the contract's: model.skops,
model.skops.sha256 and meta.json with a signature from infer_signature.
"""
import json
import os

import numpy as np
import pandas as pd
import skops.io as sio
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from swarmml_model_service.models import sha256_file
from swarmml_model_service.signature import infer_signature

KINDS = ("classifier", "regressor")
STRING_COLUMN = "size"
SIZES = ("low", "mid", "high")


def iris_frame() -> tuple:
    """(features frame, species names as strings, petal width in cm) for all 150 iris flowers."""
    iris = load_iris(as_frame=True)
    raw = iris.frame
    petal_length = raw["petal length (cm)"]
    frame = pd.DataFrame({
        "sepal_length": raw["sepal length (cm)"].astype(np.float64),
        "sepal_width": raw["sepal width (cm)"].astype(np.float64),
        "petal_length": petal_length.astype(np.float64),
        "petal_width_mm": (raw["petal width (cm)"] * 10).round().astype(np.int64),
        STRING_COLUMN: pd.cut(petal_length, [0, 2, 5, 10], labels=list(SIZES)).astype(object),
        "wide_sepal": raw["sepal width (cm)"] > 3.0,
    })
    species = np.asarray(iris.target_names)[iris.target].astype(object)
    return frame, species, raw["petal width (cm)"].to_numpy()


def make_pipeline(kind: str = "classifier") -> tuple:
    """(features frame, fitted pipeline): OneHotEncoder on the string column, StandardScaler on the rest."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    frame, species, petal_width = iris_frame()
    if kind == "regressor":  # predict petal width (cm) without its own column in mm
        frame = frame.drop(columns=["petal_width_mm"])
        target, final = petal_width, Ridge(alpha=1.0)
    else:
        target, final = species, LogisticRegression(max_iter=2000)
    numeric = [c for c in frame.columns if c != STRING_COLUMN]
    prep = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="error"), [STRING_COLUMN]),
                              ("num", StandardScaler(), numeric)])
    return frame, Pipeline([("prep", prep), ("model", final)]).fit(frame, target)


def dump_model(estimator, models_dir, name: str) -> str:
    """<models_dir>/<name>/model.skops and its .sha256, as a user hands it to `swarmml build`; the file's path."""
    mdir = os.path.join(str(models_dir), name)
    os.makedirs(mdir, exist_ok=True)
    path = os.path.join(mdir, "model.skops")
    sio.dump(estimator, path)
    with open(path + ".sha256", "w") as f:
        f.write(f"{sha256_file(path)}  model.skops\n")
    return path


def write_pipeline_model(models_dir, name: str, kind: str = "classifier", version: str = "1",
                         batching: bool = True, sample: bool = True) -> tuple:
    """Fit a pipeline and write <models_dir>/<name>/ as `swarmml build` would; return (frame, estimator).

    sample=False records the signature infer_signature guesses from the pipeline alone
    (string columns BYTES, all others FP64), as a build without a sample frame does.
    """
    frame, est = make_pipeline(kind)
    mdir = os.path.dirname(dump_model(est, models_dir, name))
    meta = {"version": str(version), "batching": batching, "sklearn_version": sklearn.__version__,
            "n_features": int(frame.shape[1]), "signature": infer_signature(est, frame if sample else None)}
    with open(os.path.join(mdir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
    return frame, est
