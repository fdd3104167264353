"""Finding, checking and loading models from the model directory.

Layout: <models_dir>/<name>/model.skops, model.skops.sha256 and meta.json
(version, feature count, whether batching pays). Types that skops may
instantiate come only from the operator (config file or environment), never
from the artifact. Pickle and joblib files are refused unless the operator
opts in with SWARMML_ALLOW_PICKLE=1.
"""
import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np


class ModelError(Exception):
    """A model could not be loaded; the server does not become ready."""


@dataclass
class LoadedModel:
    name: str
    version: str
    estimator: object
    n_features: int
    classes: np.ndarray
    batching: bool


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_digest(path):
    digest_file = path + ".sha256"
    if not os.path.exists(digest_file):
        raise ModelError(f"{path}: no {os.path.basename(digest_file)} beside it; refusing an unverified artifact")
    expected = open(digest_file).read().split()[0].strip().lower()
    actual = sha256_file(path)
    if actual != expected:
        raise ModelError(f"{path}: sha256 is {actual[:12]}…, {os.path.basename(digest_file)} says {expected[:12]}…")


def load_trusted_types(config_path=None, env_value=None):
    """The operator's list: one type per line in the config file, plus a comma list in the environment."""
    trusted = set()
    if config_path and os.path.exists(config_path):
        for line in open(config_path):
            line = line.split("#", 1)[0].strip()
            if line:
                trusted.add(line)
    if env_value:
        trusted.update(t.strip() for t in env_value.split(",") if t.strip())
    return trusted


def load_artifact(path, trusted, allow_pickle=False):
    check_digest(path)
    if path.endswith(".skops"):
        import skops.io as sio
        untrusted = set(sio.get_untrusted_types(file=path))
        refused = sorted(untrusted - set(trusted))
        if refused:
            raise ModelError(f"{path}: types not in the operator's trusted list: {', '.join(refused)}")
        return sio.load(path, trusted=sorted(untrusted))
    if path.endswith((".pkl", ".pickle", ".joblib")):
        if not allow_pickle:
            raise ModelError(f"{path}: pickle/joblib artifacts can run code when loaded; "
                             "use skops, or opt in with SWARMML_ALLOW_PICKLE=1")
        import joblib
        return joblib.load(path)
    raise ModelError(f"{path}: unknown artifact format (expected .skops)")


def find_artifact(model_dir):
    for fname in ("model.skops", "model.joblib", "model.pkl"):
        path = os.path.join(model_dir, fname)
        if os.path.exists(path):
            return path
    raise ModelError(f"{model_dir}: no model.skops")


def load_models(models_dir, names, trusted, allow_pickle=False, batching="auto"):
    """Load every named model (all in the directory when names is empty)."""
    if not os.path.isdir(models_dir):
        raise ModelError(f"model directory {models_dir} does not exist")
    available = sorted(d for d in os.listdir(models_dir) if os.path.isdir(os.path.join(models_dir, d)))
    names = names or available
    missing = [n for n in names if n not in available]
    if missing:
        raise ModelError(f"models not found in {models_dir}: {', '.join(missing)} (have: {', '.join(available)})")
    loaded = {}
    for name in names:
        mdir = os.path.join(models_dir, name)
        meta_path = os.path.join(mdir, "meta.json")
        meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
        est = load_artifact(find_artifact(mdir), trusted, allow_pickle)
        n_features = int(getattr(est, "n_features_in_", meta.get("n_features", 0)))
        use_batching = {"on": True, "off": False}.get(batching, bool(meta.get("batching", False)))
        loaded[name] = LoadedModel(name, str(meta.get("version", "1")), est, n_features,
                                   np.asarray(getattr(est, "classes_", [])), use_batching)
    return loaded


def warm_up(model):
    """One predict and one predict_proba, so the first real request pays no first-call costs."""
    rows = np.zeros((2, model.n_features))
    model.estimator.predict(rows)
    if hasattr(model.estimator, "predict_proba"):
        model.estimator.predict_proba(rows)
