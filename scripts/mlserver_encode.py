"""Encode frames into V2 request bodies with MLServer's own PandasCodec; run with the MLServer venv's python.

stdin: {"columns": [...], "dtypes": {column: "object" | "float64" | "int64" | "bool"},
        "rows": [[...], ...], "requests": [[row index, ...], ...]}
stdout: {"mlserver_version": "...", "requests": [<request JSON object>, ...]}, one request
per entry of "requests", holding those rows of the frame.

Each request is PandasCodec.encode_request(frame, use_bytes=False) dumped with
model_dump(exclude_none=True), as MLServer's docs do for REST clients
(use_bytes=False keeps strings JSON-compatible: BYTES tensors of str with
parameters content_type "str"). Imports nothing from swarmml.
"""
import json
import sys

import mlserver
import pandas as pd
from mlserver.codecs import PandasCodec


def encode(spec):
    frame = pd.DataFrame(spec["rows"], columns=spec["columns"])
    frame = frame.astype({c: (object if t == "object" else t) for c, t in spec["dtypes"].items()})
    bodies = []
    for indices in spec["requests"]:
        part = frame.iloc[list(indices)].reset_index(drop=True)
        bodies.append(PandasCodec.encode_request(part, use_bytes=False).model_dump(exclude_none=True))
    return {"mlserver_version": mlserver.__version__, "requests": bodies}


if __name__ == "__main__":
    json.dump(encode(json.load(sys.stdin)), sys.stdout)
