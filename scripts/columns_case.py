"""The per-column benchmark case: a mixed string/numeric frame and the pipeline fitted on it.

Shared by scripts/bench_inference.py and scripts/record_peer_requests.py, so the
benchmark, the recorded fixtures and the tests that replay them see the same
columns. Everything here is deterministic: the data is scikit-learn's bundled
breast cancer set (569 rows, no download), the bins are the set's own
quantiles, and the estimator has a fixed solver with no randomness.

Columns (10, in this order):
  size            BYTES  'mean area' binned at its quartiles: small, medium, large, very large
  texture         BYTES  'mean texture' binned at its quartiles: smooth, fine, coarse, rough
  symmetry        BYTES  'worst symmetry' binned at its tertiles: low, mid, high
  smoothness      FP64   'mean smoothness'
  compactness     FP64   'mean compactness'
  concavity       FP64   'mean concavity'
  concave_points  FP64   'mean concave points'
  radius_error    FP64   'radius error'
  worst_radius    FP64   'worst radius'
  worst_texture   FP64   'worst texture'
Target: the set's label (0 malignant, 1 benign).
String columns have dtype object (pandas 3's default "str" dtype is not
encodable by MLServer 1.7.1's PandasCodec: KeyError 'O' in its to_datatype).
"""
import numpy as np

BINNED = (
    ("size", "mean area", ("small", "medium", "large", "very large")),
    ("texture", "mean texture", ("smooth", "fine", "coarse", "rough")),
    ("symmetry", "worst symmetry", ("low", "mid", "high")),
)
NUMERIC = (
    ("smoothness", "mean smoothness"),
    ("compactness", "mean compactness"),
    ("concavity", "mean concavity"),
    ("concave_points", "mean concave points"),
    ("radius_error", "radius error"),
    ("worst_radius", "worst radius"),
    ("worst_texture", "worst texture"),
)
STRING_COLUMNS = [name for name, _, _ in BINNED]
NUMERIC_COLUMNS = [name for name, _ in NUMERIC]
COLUMNS = STRING_COLUMNS + NUMERIC_COLUMNS
MODEL_NAME = "cancer-columns"


def make_frame():
    """(DataFrame of the 10 columns for all 569 rows, target array)."""
    import pandas as pd
    from sklearn.datasets import load_breast_cancer
    data = load_breast_cancer()
    src = pd.DataFrame(data.data, columns=data.feature_names)
    cols = {}
    for name, feature, labels in BINNED:
        x = src[feature].to_numpy()
        edges = np.quantile(x, np.linspace(0, 1, len(labels) + 1)[1:-1])
        cols[name] = pd.Series(np.asarray(labels, dtype=object)[np.searchsorted(edges, x, side="right")],
                               dtype=object)
    for name, feature in NUMERIC:
        cols[name] = src[feature].astype("float64")
    return pd.DataFrame(cols, columns=COLUMNS), np.asarray(data.target, dtype=np.int64)


def make_pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    pre = ColumnTransformer([("strings", OneHotEncoder(handle_unknown="ignore"), STRING_COLUMNS),
                             ("numbers", StandardScaler(), NUMERIC_COLUMNS)])
    return Pipeline([("columns", pre), ("model", LogisticRegression(max_iter=1000))])


def fitted_pipeline():
    """(fitted pipeline, frame, target)."""
    frame, y = make_frame()
    return make_pipeline().fit(frame, y), frame, y


def _plain(value):
    """A frame cell as plain JSON: numpy scalars to Python bool/int/float, strings as they are."""
    return value.item() if hasattr(value, "item") else value


def sample_rows(frame, indices):
    """Plain JSON-able rows (lists in the frame's column order) of the frame at these positions."""
    return [[_plain(frame[c].iloc[i]) for c in frame.columns] for i in indices]


def frame_spec(frame, indices):
    """What the MLServer-side encoder needs to rebuild the same frame: columns, dtypes, rows."""
    return {"columns": [str(c) for c in frame.columns],
            "dtypes": {str(c): ("object" if frame[c].dtype.kind in "OUS" else str(frame[c].dtype))
                       for c in frame.columns},
            "rows": sample_rows(frame, indices)}
