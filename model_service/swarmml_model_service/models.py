"""Finding, checking and loading models from the model directory.

Layout: <models_dir>/<name>/model.skops, model.skops.sha256 and meta.json
(version, feature count, whether batching pays, and optionally the input
signature of a model fitted on a DataFrame). Types that skops may
instantiate are scikit-learn's, NumPy's and SciPy's inert ones (trust.py)
plus the operator's (config file or environment), never the artifact's.
Pickle and joblib files are refused unless the operator opts in with
SWARMML_ALLOW_PICKLE=1.
"""
import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional

import numpy as np

from swarmml_model_service import columns
from swarmml_model_service.errors import ModelError
from swarmml_model_service.protocol import ALL_OUTPUTS
from swarmml_model_service.signature import column_hints, validate_signature
from swarmml_model_service.trust import refused_types


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
    artifact: str = ""  # the file it was loaded from

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
        raise ModelError(f"no {os.path.basename(digest_file)} beside it; refusing an unverified artifact", path)
    expected = open(digest_file).read().split()[0].strip().lower()
    actual = sha256_file(path)
    if actual != expected:
        raise ModelError(f"sha256 is {actual[:12]}…, {os.path.basename(digest_file)} says {expected[:12]}…", path)


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
        refused = refused_types(untrusted, trusted)
        if refused:
            raise ModelError(f"types not in the operator's trusted list: {', '.join(refused)}", path)
        return sio.load(path, trusted=sorted(untrusted))
    if path.endswith((".pkl", ".pickle", ".joblib")):
        if not allow_pickle:
            raise ModelError("pickle/joblib artifacts can run code when loaded; "
                             "use skops, or opt in with SWARMML_ALLOW_PICKLE=1", path)
        import joblib
        return joblib.load(path)
    raise ModelError("unknown artifact format (expected .skops)", path)


def find_artifact(model_dir):
    for fname in ("model.skops", "model.joblib", "model.pkl"):
        path = os.path.join(model_dir, fname)
        if os.path.exists(path):
            return path
    raise ModelError("no model.skops", model_dir)


def load_models(models_dir, names, trusted, allow_pickle=False, batching="auto"):
    """Load every named model (all in the directory when names is empty)."""
    return {name: load_model(models_dir, name, trusted, allow_pickle, batching)
            for name in model_names(models_dir, names)}


def model_names(models_dir, names):
    """The models to load: those named, or all in the directory when none are."""
    if not os.path.isdir(models_dir):
        raise ModelError(f"model directory {models_dir} does not exist")
    available = sorted(d for d in os.listdir(models_dir) if os.path.isdir(os.path.join(models_dir, d)))
    missing = [n for n in names if n not in available]
    if missing:
        raise ModelError(f"models not found in {models_dir}: {', '.join(missing)} (have: {', '.join(available)})")
    return list(names) or available


def load_model(models_dir, name, trusted, allow_pickle=False, batching="auto") -> LoadedModel:
    """<models_dir>/<name>/ as a LoadedModel; whatever goes wrong is a ModelError naming the file at fault."""
    mdir = os.path.join(models_dir, name)
    meta_path = os.path.join(mdir, "meta.json")
    with blaming(meta_path):
        meta = read_meta(meta_path)
    path = find_artifact(mdir)
    with blaming(path):
        est = load_artifact(path, trusted, allow_pickle)
    with blaming(meta_path):
        sig = read_signature(meta, meta_path, est)
        n_features = len(sig["inputs"]) if sig else int(getattr(est, "n_features_in_", meta.get("n_features", 0)))
        version = str(meta.get("version", "1"))
    use_batching = {"on": True, "off": False}.get(batching, bool(meta.get("batching", False)))
    return LoadedModel(name, version, est, n_features, np.asarray(getattr(est, "classes_", [])), use_batching, sig,
                       tuple(o for o in ALL_OUTPUTS if hasattr(est, o)), path)


def read_meta(meta_path) -> dict:
    if not os.path.exists(meta_path):
        return {}
    with open(meta_path) as f:
        return json.load(f)


@contextmanager
def blaming(file):
    """Any other failure inside (a corrupt archive, bad JSON) becomes a ModelError, so that it names the file."""
    try:
        yield
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"{type(exc).__name__}: {exc}", file) from exc


def read_signature(meta: dict, where: str, estimator: object) -> Optional[dict]:
    """meta.json's signature, checked against the names the estimator was fitted with."""
    if "signature" not in meta or meta["signature"] is None:
        return None
    try:
        sig = validate_signature(meta["signature"], where)
    except ValueError as exc:
        raise ModelError(str(exc).removeprefix(f"{where}: "), where) from None
    fitted = getattr(estimator, "feature_names_in_", None)
    names = [i["name"] for i in sig["inputs"]]
    if sig["columns"]:
        # scikit-learn refuses a frame whose columns differ from the fit's, in name or in order
        if fitted is None:
            raise ModelError("the signature says columns: true, but the model was fitted without "
                             "column names (set \"columns\": false)", where)
        if [str(n) for n in fitted] != names:
            raise ModelError(f"signature columns {names} differ from those the model was fitted with: "
                             f"{[str(n) for n in fitted]}", where)
    elif len(names) != getattr(estimator, "n_features_in_", len(names)):
        raise ModelError(f"the signature has {len(names)} inputs, the model takes "
                         f"{estimator.n_features_in_} features", where)
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
            # Zeros are rows any numeric model should take: one that fails on them is not served.
            raise ModelError(f"warm-up predict failed ({type(exc).__name__}: {exc})", model.artifact) from exc
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
