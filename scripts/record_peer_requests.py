#!/usr/bin/env python3
"""Record, from the real peer library, request bodies that unit tests replay without MLServer installed.

    python3 scripts/record_peer_requests.py [--out-dir tests/data]

MLServer (its venv, made by scripts/bench_inference.py's ensure_mlserver)
encodes each frame below with PandasCodec.encode_request(frame,
use_bytes=False) and model_dump(exclude_none=True), as MLServer's docs do for
REST clients: once for the whole frame ("request": shape [n, 1] per column)
and once for its first row alone ("request_one_row": shape [1, 1], the
benchmark's form). Each file keeps the frame's columns, dtypes and values so a
test can rebuild the frame and compare answers, and the fitted pipeline's
predict / predict_proba for it.

The frames, deterministically (no randomness anywhere: the data ships with
scikit-learn, the pipelines use fixed solvers):

tests/data/mlserver_pandas_request.json -- the test pipeline
  tests/helpers/pipelines.py iris_frame() (6 columns, one per signature datatype:
  sepal_length, sepal_width, petal_length FP64; petal_width_mm INT64; size
  BYTES; wide_sepal BOOL), rows at IRIS_ROWS (every 25th flower and the
  last: each size label and both wide_sepal values appear); answers of
  make_pipeline("classifier") (string species labels).

tests/data/mlserver_pandas_request_cancer.json -- the benchmark pipeline
  scripts/columns_case.py make_frame() (10 columns: 3 BYTES binned from the
  breast cancer set, 7 FP64), rows at CANCER_ROWS (each label of each string
  column appears); answers of columns_case.fitted_pipeline().

String columns are dtype object (MLServer 1.7.1's PandasCodec cannot encode
pandas 3's "str" dtype).
"""
import argparse
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import columns_case as cc  # noqa: E402
from bench_inference import encode_with_mlserver, ensure_mlserver, mlserver_python  # noqa: E402

IRIS_ROWS = [0, 25, 50, 75, 100, 125, 149]
CANCER_ROWS = [0, 19, 28, 45, 101, 160, 360, 568]


def test_pipeline():
    """(frame, fitted pipeline, string columns) of tests/helpers/pipelines.py, the pipeline the unit tests serve."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "helpers"))
    import pipelines
    frame, est = pipelines.make_pipeline("classifier")
    return frame, est, [pipelines.STRING_COLUMN], "tests/helpers/pipelines.py make_pipeline('classifier')"


def bench_pipeline():
    est, frame, _ = cc.fitted_pipeline()
    return frame, est, cc.STRING_COLUMNS, "scripts/columns_case.py fitted_pipeline()"


def peer_versions():
    code = "import json, mlserver, pandas, numpy; print(json.dumps({'mlserver': mlserver.__version__, " \
           "'pandas': pandas.__version__, 'numpy': numpy.__version__}))"
    out = subprocess.run([mlserver_python(), "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def record(frame, est, string_columns, source, rows, model):
    import sklearn
    part = frame.iloc[rows]
    for name in string_columns:
        missing = set(frame[name]) - set(part[name])
        if missing:
            raise SystemExit(f"{source}: the recorded rows miss labels {sorted(missing)} of column {name!r}")
    spec = cc.frame_spec(frame, rows)
    encoded = encode_with_mlserver(dict(spec, requests=[list(range(len(rows))), [0]]))
    expected = {"sklearn_version": sklearn.__version__, "predict": est.predict(part).tolist()}
    if hasattr(est, "predict_proba"):
        expected["predict_proba"] = est.predict_proba(part).tolist()
    return {
        "about": "MLServer PandasCodec.encode_request(df, use_bytes=False).model_dump(exclude_none=True); written by "
                 "scripts/record_peer_requests.py, whose docstring says how the frame is made.",
        "recorded_with": dict(peer_versions(), python=platform.python_version()),
        "pipeline": source,
        "model": model,
        "frame": {"columns": spec["columns"], "dtypes": spec["dtypes"], "source_rows": rows, "rows": spec["rows"]},
        "request": encoded["requests"][0],
        "request_one_row": encoded["requests"][1],
        "expected": expected,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "tests", "data"))
    args = ap.parse_args()
    ensure_mlserver()
    os.makedirs(args.out_dir, exist_ok=True)
    for fname, make, rows, model in (("mlserver_pandas_request.json", test_pipeline, IRIS_ROWS, "iris-pipeline"),
                                     ("mlserver_pandas_request_cancer.json", bench_pipeline, CANCER_ROWS,
                                      cc.MODEL_NAME)):
        data = record(*make(), rows, model)
        path = os.path.join(args.out_dir, fname)
        with open(path, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        print(f"{path}: {len(rows)} rows of {data['pipeline']}, MLServer {data['recorded_with']['mlserver']}")


if __name__ == "__main__":
    main()
