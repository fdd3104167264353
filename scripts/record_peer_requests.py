#!/usr/bin/env python3
"""Record, from the real peer library, request bodies that unit tests replay without MLServer installed.

    python3 scripts/record_peer_requests.py [--out tests/data/mlserver_pandas_request.json]

Writes tests/data/mlserver_pandas_request.json: MLServer's
PandasCodec.encode_request for a small frame of the benchmark pipeline's
columns (scripts/columns_case.py), with the frame's values so a test can
compare answers.

The frame, deterministically:
- the 10 columns of scripts/columns_case.make_frame() (scikit-learn's bundled
  breast cancer set; 3 string columns binned at the set's own quantiles, 7
  float64 columns), strings as dtype object;
- the rows at positions FRAME_ROWS of that frame, in that order (chosen so that
  each label of each string column appears at least once; checked below);
- encoded by MLServer (its venv, made by scripts/bench_inference.py's
  ensure_mlserver) with PandasCodec.encode_request(frame, use_bytes=False) and
  model_dump(exclude_none=True), as MLServer's docs do for REST: once for the
  whole frame ("request", shape [n, 1] per column) and once for its first row
  alone ("request_one_row", shape [1, 1], the benchmark's form).

"expected" holds the predict and predict_proba of the pipeline
(columns_case.fitted_pipeline(), fitted here on all 569 rows) for the frame's
rows, with the scikit-learn version that computed them.
"""
import argparse
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import columns_case as cc  # noqa: E402
from bench_inference import encode_with_mlserver, ensure_mlserver, mlserver_python  # noqa: E402

FRAME_ROWS = [0, 19, 28, 45, 101, 160, 360, 568]
DEFAULT_OUT = os.path.join(os.path.dirname(HERE), "tests", "data", "mlserver_pandas_request.json")


def peer_versions():
    code = "import json, mlserver, pandas, numpy; print(json.dumps({'mlserver': mlserver.__version__, " \
           "'pandas': pandas.__version__, 'numpy': numpy.__version__}))"
    out = subprocess.run([mlserver_python(), "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def record():
    import sklearn
    pipe, frame, _ = cc.fitted_pipeline()
    part = frame.iloc[FRAME_ROWS]
    for name, _, labels in cc.BINNED:
        missing = set(labels) - set(part[name])
        if missing:
            raise SystemExit(f"FRAME_ROWS miss labels {sorted(missing)} of column {name!r}")
    spec = cc.frame_spec(frame, FRAME_ROWS)
    encoded = encode_with_mlserver(dict(spec, requests=[list(range(len(FRAME_ROWS))), [0]]))
    return {
        "about": "MLServer PandasCodec.encode_request(df, use_bytes=False).model_dump(exclude_none=True) for a "
                 "frame of the columns benchmark's pipeline; written by scripts/record_peer_requests.py, which "
                 "documents how the frame is made.",
        "recorded_with": dict(peer_versions(), python=platform.python_version()),
        "model": cc.MODEL_NAME,
        "frame": {"columns": spec["columns"], "dtypes": spec["dtypes"], "source_rows": FRAME_ROWS,
                  "rows": spec["rows"]},
        "request": encoded["requests"][0],
        "request_one_row": encoded["requests"][1],
        "expected": {"sklearn_version": sklearn.__version__,
                     "predict": pipe.predict(part).tolist(),
                     "predict_proba": pipe.predict_proba(part).tolist()},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    ensure_mlserver()
    data = record()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    print(f"{args.out}: {len(data['frame']['rows'])} rows, MLServer {data['recorded_with']['mlserver']}")


if __name__ == "__main__":
    main()
