"""Finding, checking and loading models from the model directory.

Layout: <models_dir>/<name>/model.skops, model.skops.sha256 and meta.json
(version, feature count, whether batching pays, and optionally the input
signature of a model fitted on a DataFrame). Types that skops may
instantiate come only from the operator (config file or environment), never
from the artifact. Pickle and joblib files are refused unless the operator
opts in with SWARMML_ALLOW_PICKLE=1.
"""
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from swarmml_model_service import columns
from swarmml_model_service.protocol import ALL_OUTPUTS
from swarmml_model_service.signature import column_hints, validate_signature


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
    signature: Optional[dict] = None  # None: one 2-D numeric tensor, as for iris
    outputs: tuple = ("predict", "predict_proba")  # the methods the estimator has, in protocol order

    def to_input(self, payload):
        """What the estimator's methods get for a parsed (and maybe batched) payload."""
        if isinstance(payload, dict):
            return columns.to_model_input(payload, self.signature)
        return payload


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
        sig = read_signature(meta, meta_path, est)
        n_features = len(sig["inputs"]) if sig else int(getattr(est, "n_features_in_", meta.get("n_features", 0)))
        use_batching = {"on": True, "off": False}.get(batching, bool(meta.get("batching", False)))
        loaded[name] = LoadedModel(name, str(meta.get("version", "1")), est, n_features,
                                   np.asarray(getattr(est, "classes_", [])), use_batching, sig,
                                   tuple(o for o in ALL_OUTPUTS if hasattr(est, o)))
    return loaded


def read_signature(meta: dict, where: str, estimator: object) -> Optional[dict]:
    """meta.json's signature, checked against the names the estimator was fitted with."""
    if "signature" not in meta or meta["signature"] is None:
        return None
    try:
        sig = validate_signature(meta["signature"], where)
    except ValueError as exc:
        raise ModelError(str(exc)) from None
    fitted = getattr(estimator, "feature_names_in_", None)
    names = [i["name"] for i in sig["inputs"]]
    if sig["columns"]:
        # scikit-learn refuses a frame whose columns differ from the fit's, in name or in order
        if fitted is None:
            raise ModelError(f"{where}: the signature says columns: true, but the model was fitted without "
                             "column names (set \"columns\": false)")
        if [str(n) for n in fitted] != names:
            raise ModelError(f"{where}: signature columns {names} differ from those the model was fitted with: "
                             f"{[str(n) for n in fitted]}")
    elif len(names) != getattr(estimator, "n_features_in_", len(names)):
        raise ModelError(f"{where}: the signature has {len(names)} inputs, the model takes "
                         f"{estimator.n_features_in_} features")
    return sig


def warm_up(model: LoadedModel) -> Optional[str]:
    """Call every output once, so the first real request pays no first-call costs; None, or why it was skipped."""
    if model.signature is None:
        payload = np.zeros((2, model.n_features))
    else:
        payload = warm_up_columns(model.signature, column_hints(model.estimator))
        if isinstance(payload, str):
            return payload
    est, X = model.estimator, model.to_input(payload)
    try:
        for name in model.outputs:
            getattr(est, name)(X)
    except Exception as exc:
        if model.signature is None:
            raise
        # A made-up row may be outside what a user's pipeline accepts; real requests still get a 500 that says why.
        return f"warm-up predict failed on a made-up row ({type(exc).__name__}: {exc})"
    return None


def warm_up_columns(sig: dict, hints: dict):
    """Two rows a column model should accept, or (a str) why none can be made up."""
    cols = {}
    for item in sig["inputs"]:
        name, datatype = item["name"], item["datatype"]
        if datatype == "BYTES":
            known = hints.get(name, (True, None))[1]
            if known is None:
                return f"no category known for column {name!r}: warm-up skipped"
            cols[name] = np.array([known, known], dtype=object)
        else:
            cols[name] = np.zeros(2, dtype={"FP64": np.float64, "INT64": np.int64, "BOOL": np.bool_}[datatype])
    return cols
