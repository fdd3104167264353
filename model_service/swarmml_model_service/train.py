"""Train the default models on iris and write them in skops format with a sha256 beside each.

    python -m swarmml_model_service.train --out models [--version 1]
"""
import argparse
import json
import os

import numpy as np
import skops.io as sio
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from swarmml_model_service.models import sha256_file

# Batching pays where predict has a large fixed cost per call compared with its
# cost per row: measured here, it does for both (scikit-learn's input checks
# alone cost about 50 us per call).
MODELS = {
    "iris-logreg": (lambda seed: LogisticRegression(max_iter=1000, random_state=seed), True),
    "iris-rf": (lambda seed: RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1), True),
}


def train(out_dir, version="1", names=None):
    X, y = load_iris(return_X_y=True)
    seed = int(version) if str(version).isdigit() else 0
    written = {}
    for name in names or MODELS:
        make, batching = MODELS[name]
        est = make(seed).fit(X, y)
        mdir = os.path.join(out_dir, name)
        os.makedirs(mdir, exist_ok=True)
        path = os.path.join(mdir, "model.skops")
        sio.dump(est, path)
        with open(path + ".sha256", "w") as f:
            f.write(f"{sha256_file(path)}  model.skops\n")
        with open(os.path.join(mdir, "meta.json"), "w") as f:
            json.dump({"version": str(version), "n_features": int(X.shape[1]), "batching": batching,
                       "accuracy": float(np.mean(est.predict(X) == y))}, f)
        written[name] = path
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="models")
    parser.add_argument("--version", default="1")
    parser.add_argument("--model", action="append", choices=sorted(MODELS))
    args = parser.parse_args()
    for name, path in train(args.out, args.version, args.model).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
