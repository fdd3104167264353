"""`swarmml build --model`: every bad model is refused on this machine, before any image, with one line.

Real artifacts, fitted and dumped here with scikit-learn and skops; no engine is needed, because the
checks run (and fail) before swarmml asks for one.
"""
import json
import operator
import os
import subprocess
import sys
import zipfile

import pytest
import skops.io as sio
import sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from swarmml.build import artifacts, predictor as build, context as predictor_image
from swarmml.build.artifacts import ModelRejected, ModelSource, check_model, parse_model_option
from swarmml.errors import SwarmmlError, UsageError

TRUSTED = predictor_image.default_trusted_types()


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def dump(est, path):
    sio.dump(est, str(path))
    return str(path)


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "swarmml", *args], capture_output=True, text=True, cwd=cwd)


def test_a_fitted_pipeline_passes_every_check(tmp_path, iris):
    X, y = iris
    path = dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y), tmp_path / "m.skops")
    m = check_model(ModelSource("m", path), TRUSTED)
    assert (m.format, m.sklearn_version, m.n_features, m.signature) == ("skops", sklearn.__version__, 4, None)
    meta = m.meta_json("3")
    assert meta["version"] == "3" and meta["sklearn_version"] == sklearn.__version__ and meta["batching"]


def test_an_untrusted_type_is_listed_with_the_flag_that_trusts_it(tmp_path, iris):
    X, y = iris
    est = make_pipeline(FunctionTransformer(operator.neg), LogisticRegression(max_iter=500)).fit(X, y)
    path = dump(est, tmp_path / "logs.skops")
    with pytest.raises(ModelRejected) as err:
        check_model(ModelSource("logs", path), TRUSTED)
    assert str(err.value) == (f"{path}: needs types you have not trusted: _operator.neg; if you trust them, "
                              "pass --trust _operator.neg (or list them in a --trust-file)")
    assert check_model(ModelSource("logs", path), TRUSTED | {"_operator.neg"}).n_features == 4


def test_no_predict_is_refused(tmp_path, iris):
    path = dump(StandardScaler().fit(iris[0]), tmp_path / "scaler.skops")
    with pytest.raises(ModelRejected, match=r"scaler.skops: StandardScaler has no predict\(\); swarmml serves"):
        check_model(ModelSource("scaler", path), TRUSTED)


def test_a_corrupt_file_is_refused(tmp_path):
    path = tmp_path / "broken.skops"
    path.write_bytes(b"PK\x03\x04 this is not a zip file at all")
    with pytest.raises(ModelRejected, match=r"broken.skops: not a readable skops file \(BadZipFile: .*\); "
                                            r"save it again with skops.io.dump"):
        check_model(ModelSource("broken", str(path)), TRUSTED)


def test_a_sha256_that_does_not_match_is_refused(tmp_path, iris):
    path = dump(LogisticRegression(max_iter=500).fit(*iris), tmp_path / "m.skops")
    with open(path + ".sha256", "w") as f:
        f.write("0" * 64 + "  m.skops\n")
    with pytest.raises(ModelRejected, match=r"m.skops: sha256 is [0-9a-f]{12}…, m.skops.sha256 says 000000000000…; "
                                            r"the file changed or is corrupt"):
        check_model(ModelSource("m", path), TRUSTED)


def test_pickle_only_with_allow_pickle(tmp_path, iris):
    import joblib
    path = str(tmp_path / "m.joblib")
    joblib.dump(LogisticRegression(max_iter=500).fit(*iris), path)
    with pytest.raises(ModelRejected, match=r"m.joblib: pickle/joblib files run code when loaded; .*--allow-pickle"):
        check_model(ModelSource("m", path), TRUSTED)
    m = check_model(ModelSource("m", path), TRUSTED, allow_pickle=True)
    assert (m.format, m.sklearn_version) == ("pickle", sklearn.__version__)


def _with_sklearn_version(src, dst, version):
    """A copy of a skops file whose estimator says it was fitted with another scikit-learn."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "schema.json":
                schema = json.loads(data)
                schema["content"]["content"]["_sklearn_version"]["content"] = json.dumps(version)
                data = json.dumps(schema).encode()
            zout.writestr(item, data)
    return str(dst)


def test_the_version_is_read_from_the_artifact_and_must_agree_with_the_flag(tmp_path, iris):
    src = dump(LogisticRegression(max_iter=500).fit(*iris), tmp_path / "m.skops")
    old = _with_sklearn_version(src, tmp_path / "old.skops", "1.5.2")
    assert check_model(ModelSource("old", old), TRUSTED).sklearn_version == "1.5.2"
    with pytest.raises(ModelRejected, match=r"old.skops: was fitted with scikit-learn 1.5.2, --sklearn-version "
                                            r"says 1.6.0; drop the flag"):
        check_model(ModelSource("old", old), TRUSTED, sklearn_version="1.6.0")


def test_a_scikit_learn_version_without_a_wheel_is_refused_before_building(tmp_path, iris, monkeypatch):
    monkeypatch.setenv("SWARMML_CACHE_DIR", str(tmp_path / "cache"))
    src = dump(LogisticRegression(max_iter=500).fit(*iris), tmp_path / "m.skops")
    old = _with_sklearn_version(src, tmp_path / "ancient.skops", "0.9")
    # No engine is asked for: the refusal comes from pip, before the build starts.
    monkeypatch.setattr(build, "host_client", lambda: pytest.fail("the engine was reached"))
    with pytest.raises(SwarmmlError, match=r"ancient.skops: no scikit-learn 0.9 wheel for the image's Python 3.11 "
                                           r"\(.*\); refit the model"):
        build.build(models=build.ModelOptions([ModelSource("ancient", old)]))


def test_cli_refusals_are_one_line_and_exit_2(tmp_path, iris):
    path = dump(StandardScaler().fit(iris[0]), tmp_path / "scaler.skops")
    for args, message in [
        (["--model", f"s={path}"], f"swarmml: error: {path}: StandardScaler has no predict()"),
        (["--model", "Bad Name=x.skops"], "swarmml: error: --model Bad Name=x.skops: model name 'Bad Name' must be"),
        (["--model", str(tmp_path / "missing.skops")], f"swarmml: error: {tmp_path / 'missing.skops'}: no such file"),
        (["--model", f"a={path}", "--model", f"a={path}"], "swarmml: error: --model: the name 'a' is given twice"),
        (["--model", f"s={path}", "--sklearn-version", "latest"], "swarmml: error: --sklearn-version: expected"),
    ]:
        done = cli("build", *args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith(message) and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_model_names_from_the_option():
    assert parse_model_option("churn=models/v2.skops") == ModelSource("churn", "models/v2.skops")
    assert parse_model_option("models/Churn.skops") == ModelSource("churn", "models/Churn.skops")
    assert parse_model_option("exported/churn-model/") == ModelSource("churn-model", "exported/churn-model/")
    with pytest.raises(UsageError, match="expected NAME=PATH"):
        parse_model_option("churn=")


def test_one_image_runs_one_scikit_learn():
    def model(name, version):
        return artifacts.CheckedModel(name, name + ".skops", "skops", "", version, None, 4, None)
    assert artifacts.image_sklearn_version([]) is None
    assert artifacts.image_sklearn_version([model("a", "1.5.2"), model("b", "1.5.2")]) == "1.5.2"
    with pytest.raises(UsageError, match=r"these models need 1.5.2: a; 1.6.1: b, c; build them as separate images"):
        artifacts.image_sklearn_version([model("a", "1.5.2"), model("b", "1.6.1"), model("c", "1.6.1")])


def test_requirements_pin_the_models_scikit_learn():
    reqs = ["numpy>=1.26", "scikit-learn>=1.4", "skops>=0.10", "uvicorn>=0.30"]
    assert predictor_image.pin_requirements(reqs, "1.5.2", "0.16.0") == [
        "numpy>=1.26", "scikit-learn==1.5.2", "skops>=0.16.0", "uvicorn>=0.30"]
    assert predictor_image.pin_requirements(reqs, None, None) == reqs
    assert predictor_image.pin_requirements(reqs + ["pandas>=2.0"], None, None, frames=False) == reqs
    # The one list is swarmml's `serve` extra, as installed.
    served = predictor_image.serve_requirements()
    assert any(r.startswith("scikit-learn") for r in served) and any(r.startswith("pandas") for r in served)


def test_a_context_with_nothing_changed_is_left_as_it_was(tmp_path, iris, monkeypatch):
    monkeypatch.setenv("SWARMML_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(predictor_image, "_download_wheels", lambda ctx, reqs: None)
    path = dump(LogisticRegression(max_iter=500).fit(*iris), tmp_path / "m.skops")
    m = check_model(ModelSource("churn", path), TRUSTED)
    ctx = predictor_image.prepare([m], TRUSTED | {"x.Y"}, m.sklearn_version, "1")
    assert f"scikit-learn=={sklearn.__version__}\n" in open(os.path.join(ctx, "requirements.txt")).read()
    assert "x.Y\n" in open(os.path.join(ctx, "trusted-types.txt")).read()
    meta = json.load(open(os.path.join(ctx, "models", "churn", "meta.json")))
    assert meta["version"] == "1" and meta["n_features"] == 4
    stamps = {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns for d, _, fs in os.walk(ctx) for f in fs}
    assert predictor_image.prepare([m], TRUSTED | {"x.Y"}, m.sklearn_version, "1") == ctx
    again = {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns for d, _, fs in os.walk(ctx) for f in fs}
    assert again == stamps


def test_the_generate_line_names_what_was_built():
    result = build.BuildResult("base", ["churn"])
    assert build.generate_command(result, "v2") == "swarmml generate --tag v2 --model churn -o stack.yml"
    assert build.generate_command(build.BuildResult("base", list(build.DEFAULT_MODELS)), "latest") == \
        "swarmml generate -o stack.yml"
