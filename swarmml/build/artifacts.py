"""A user's model, checked on this machine before any image is built.

`swarmml build --model NAME=PATH` takes a .skops file, or a directory in the
model service's layout (model.skops, its .sha256, meta.json). Every check
that fails is one line naming the file and what to do about it:

- a .sha256 beside the artifact must match it;
- the artifact loads under the default trusted types (scikit-learn's, NumPy's
  and SciPy's inert ones, derived in swarmml_model_service.trust, as the model
  service does) and the operator's, never types read from the artifact itself;
  the ones it needs beyond those are listed, with the flag that trusts them;
- pickle and joblib files only with --allow-pickle, since loading them runs code;
- the estimator has predict();
- the scikit-learn version that fitted it is known: read from the artifact,
  or given with --sklearn-version. The image installs exactly that version.

The input signature is recorded here too, from the fitted estimator or a
sample of the training frame, so that the server never guesses at run time.
"""
from __future__ import annotations

import json
import os
import re
import warnings
import zipfile
from dataclasses import dataclass, field

from swarmml.errors import UsageError
from swarmml_model_service.models import sha256_file
from swarmml_model_service.signature import infer_signature, validate_signature
from swarmml_model_service.trust import refused_types

SKOPS_SUFFIXES = (".skops",)
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
# The model service's directory layout: the first of these that exists is the artifact.
LAYOUT_ARTIFACTS = ("model.skops", "model.joblib", "model.pkl")
# A model's name is a URL path segment (/v2/models/NAME) and a directory name in the image.
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class ModelRejected(UsageError):
    """A model that can't go into an image; the message names its file."""


@dataclass(frozen=True)
class ModelSource:
    name: str
    path: str


@dataclass
class CheckedModel:
    name: str
    artifact: str  # the artifact file
    format: str  # "skops" or "pickle"
    sha256: str
    sklearn_version: str
    skops_version: str | None  # the skops that wrote it (the image needs at least this one)
    n_features: int
    signature: dict | None  # None: a numeric model fed one 2-D tensor
    meta: dict = field(default_factory=dict)  # a model directory's own meta.json

    def meta_json(self, version: str) -> dict:
        """meta.json for the image (the model service's layout)."""
        meta = {**self.meta, "version": str(self.meta.get("version", version)),
                "sklearn_version": self.sklearn_version, "n_features": self.n_features}
        meta.setdefault("batching", True)
        if self.signature is not None:
            meta["signature"] = self.signature
        return meta


def parse_model_option(value: str) -> ModelSource:
    """NAME=PATH, or PATH alone (its stem is the name)."""
    name, sep, path = value.partition("=")
    if not sep:
        path = value
        base = os.path.basename(os.path.normpath(path))
        name = base.split(".", 1)[0] if os.path.splitext(base)[1] else base
    if not path:
        raise UsageError(f"--model {value}: expected NAME=PATH or PATH")
    name = name.lower() if not sep else name
    if not NAME.match(name):
        raise UsageError(f"--model {value}: model name {name!r} must be lowercase letters, digits, '.', '_' or '-' "
                         "(it becomes /v2/models/NAME)")
    return ModelSource(name, path)


def unique_sources(sources: list[ModelSource]) -> list[ModelSource]:
    seen: dict[str, str] = {}
    for s in sources:
        if s.name in seen:
            raise UsageError(f"--model: the name {s.name!r} is given twice ({seen[s.name]} and {s.path})")
        seen[s.name] = s.path
    return sources


def locate(source: ModelSource) -> tuple[str, dict]:
    """The artifact file, and the directory's meta.json when the path is a model directory."""
    path = source.path
    if os.path.isdir(path):
        for fname in LAYOUT_ARTIFACTS:
            candidate = os.path.join(path, fname)
            if os.path.isfile(candidate):
                meta_path = os.path.join(path, "meta.json")
                return candidate, (_read_json(meta_path) if os.path.isfile(meta_path) else {})
        raise ModelRejected(f"{path}: a model directory needs one of {', '.join(LAYOUT_ARTIFACTS)}")
    if not os.path.isfile(path):
        raise ModelRejected(f"{path}: no such file or directory")
    if not path.endswith(SKOPS_SUFFIXES + PICKLE_SUFFIXES):
        raise ModelRejected(f"{path}: unknown model format; save it with skops.io.dump as a .skops file")
    return path, {}


def check_model(source: ModelSource, trusted: set[str], *, allow_pickle: bool = False,
                sklearn_version: str | None = None, signature_file: str | None = None) -> CheckedModel:
    """Every check of the module docstring, in order; the first that fails raises ModelRejected."""
    artifact, meta = locate(source)
    fmt = "skops" if artifact.endswith(SKOPS_SUFFIXES) else "pickle"
    digest = check_digest(artifact)
    if fmt == "pickle" and not allow_pickle:
        raise ModelRejected(f"{artifact}: pickle/joblib files run code when loaded; save the model with "
                            "skops.io.dump, or pass --allow-pickle if you trust this file")
    if fmt == "skops":
        schema = read_skops_schema(artifact)
        needed = skops_types(artifact)
        refused = refused_types(needed, trusted)
        if refused:
            flags = " ".join(f"--trust {t}" for t in refused)
            raise ModelRejected(f"{artifact}: needs types you have not trusted: {', '.join(refused)}; if you trust "
                                f"them, pass {flags} (or list them in a --trust-file)")
        estimator, _ = _load(artifact, lambda: _skops_load(artifact, needed))
        recorded, skops_version = skops_sklearn_version(schema), schema.get("_skops_version")
    else:
        # Unpickling an estimator warns when its version differs from ours, and says nothing when it is ours.
        estimator, warned = _load(artifact, lambda: _joblib_load(artifact))
        recorded, skops_version = warned or _our_sklearn_version(), None
    if not callable(getattr(estimator, "predict", None)):
        raise ModelRejected(f"{artifact}: {type(estimator).__name__} has no predict(); swarmml serves fitted "
                            "estimators and pipelines that predict")
    version = resolve_sklearn_version(artifact, recorded, sklearn_version)
    sig = load_signature(artifact, estimator, signature_file)
    n_features = len(sig["inputs"]) if sig else int(getattr(estimator, "n_features_in_", meta.get("n_features", 0)))
    if not n_features:
        raise ModelRejected(f"{artifact}: can't tell how many features {type(estimator).__name__} takes; "
                            "pass --signature FILE")
    return CheckedModel(source.name, artifact, fmt, digest, version, skops_version, n_features, sig, meta)


def check_digest(artifact: str) -> str:
    """The artifact's sha256; one written beside it (ARTIFACT.sha256) must agree."""
    actual = sha256_file(artifact)
    beside = artifact + ".sha256"
    if os.path.exists(beside):
        words = open(beside).read().split()
        expected = words[0].lower() if words else ""
        if actual != expected:
            raise ModelRejected(f"{artifact}: sha256 is {actual[:12]}…, {os.path.basename(beside)} says "
                                f"{expected[:12] or 'nothing'}…; the file changed or is corrupt")
    return actual


def read_skops_schema(artifact: str) -> dict:
    try:
        with zipfile.ZipFile(artifact) as z:
            return json.loads(z.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ModelRejected(f"{artifact}: not a readable skops file ({_short(exc)}); save it again with "
                            "skops.io.dump") from None


def skops_sklearn_version(schema: dict) -> str | None:
    """Pure: the version scikit-learn wrote into the top estimator's state (its __getstate__ adds it)."""
    node = (schema.get("content") or {}).get("content") or {}
    entry = node.get("_sklearn_version") if isinstance(node, dict) else None
    if isinstance(entry, dict) and entry.get("is_json"):
        try:
            value = json.loads(entry.get("content", ""))
        except ValueError:
            return None
        return value if isinstance(value, str) else None
    return None


def resolve_sklearn_version(artifact: str, recorded: str | None, given: str | None) -> str:
    """Pure: the artifact's own version, or --sklearn-version where it has none; they must agree."""
    if recorded and given and recorded != given:
        raise ModelRejected(f"{artifact}: was fitted with scikit-learn {recorded}, --sklearn-version says {given}; "
                            "drop the flag, or refit the model with the version you want")
    version = recorded or given
    if not version:
        raise ModelRejected(f"{artifact}: can't tell which scikit-learn fitted it; pass --sklearn-version")
    return version


def check_version_flag(given: str | None) -> None:
    if given and not re.match(r"^\d+\.\d+(\.\d+)?([a-z]+\d*)?(\.post\d+)?$", given):
        raise UsageError(f"--sklearn-version: expected a version like 1.5.2, got {given!r}")


def skops_types(artifact: str) -> set[str]:
    """The types the artifact needs beyond skops' own safe defaults (read from the file, trusted by nobody yet)."""
    import skops.io as sio
    try:
        return set(sio.get_untrusted_types(file=artifact))
    except Exception as exc:  # skops raises many kinds on a damaged file
        raise ModelRejected(f"{artifact}: not a readable skops file ({_short(exc)}); save it again with "
                            "skops.io.dump") from None


def load_signature(artifact: str, estimator, signature_file: str | None) -> dict | None:
    """From --signature (a JSON signature, or a CSV sample of the training frame), else from the estimator."""
    if signature_file is None:
        return infer_signature(estimator)
    if not os.path.isfile(signature_file):
        raise UsageError(f"--signature {signature_file}: no such file")
    if signature_file.endswith(".json"):
        try:
            sig = validate_signature(_read_json(signature_file), signature_file)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    elif signature_file.endswith(".csv"):
        import pandas as pd
        try:
            sample = pd.read_csv(signature_file, nrows=1000)
        except Exception as exc:
            raise UsageError(f"--signature {signature_file}: can't read it as CSV ({_short(exc)})") from None
        try:
            sig = infer_signature(estimator, sample=sample)
        except ValueError as exc:
            raise UsageError(f"--signature {signature_file}: {exc}") from None
    else:
        raise UsageError(f"--signature {signature_file}: expected a .json signature or a .csv sample of the "
                         "training frame")
    names = list(getattr(estimator, "feature_names_in_", []))
    given = [i["name"] for i in (sig or {}).get("inputs", [])]
    if names and given != [str(n) for n in names]:
        raise ModelRejected(f"{artifact}: the model was fitted on the columns {', '.join(map(str, names))}; "
                            f"--signature {signature_file} lists {', '.join(given)}")
    return sig


def image_sklearn_version(models: list[CheckedModel]) -> str | None:
    """Pure: the one scikit-learn version an image of these models runs (None: no user models)."""
    versions = sorted({m.sklearn_version for m in models})
    if len(versions) > 1:
        by = "; ".join(f"{v}: {', '.join(m.name for m in models if m.sklearn_version == v)}" for v in versions)
        raise UsageError(f"--model: one image runs one scikit-learn, these models need {by}; build them as "
                         "separate images")
    return versions[0] if versions else None


def _load(artifact, load):
    """Load, and the version scikit-learn reports fitting it with when that differs from ours (else None)."""
    from sklearn.exceptions import InconsistentVersionWarning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        try:
            estimator = load()
        except ModelRejected:
            raise
        except Exception as exc:
            raise ModelRejected(f"{artifact}: can't be loaded ({_short(exc)})") from None
    original = [w.message.original_sklearn_version for w in caught
                if isinstance(w.message, InconsistentVersionWarning)]
    return estimator, (original[0] if original else None)


def _our_sklearn_version():
    import sklearn
    return sklearn.__version__


def _skops_load(artifact, needed):
    import skops.io as sio
    # check_model has refused any of these that neither the default nor the operator trusts.
    return sio.load(artifact, trusted=sorted(needed))


def _joblib_load(artifact):
    import joblib
    return joblib.load(artifact)


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except ValueError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from None


def _short(exc):
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
