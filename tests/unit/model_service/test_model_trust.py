"""Which types a skops file may hold without any --trust: scikit-learn's, NumPy's and SciPy's inert ones.

Each of scikit-learn's main estimator families is fitted in a typical pipeline on a DataFrame (string
columns one-hot and ordinal encoded, numbers imputed and scaled, the rest passed through), dumped with
skops, and must pass the check `swarmml build` runs (check_model) and load in the model service's loader,
both with nothing trusted beyond the default. A type from anywhere else is still refused with one line.
"""
import functools
import importlib
import inspect
import json
import os

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (ExtraTreesClassifier, GradientBoostingClassifier, HistGradientBoostingClassifier,
                              HistGradientBoostingRegressor, RandomForestRegressor)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier

from pipelines import dump_model

from swarmml.build.artifacts import ModelRejected, ModelSource, check_model
from swarmml_model_service import models as service

STRINGS = ["plan", "region"]
NUMBERS = ["tenure", "spend"]


def churn_frame(rows: int = 160) -> tuple:
    """(frame, churned as 'yes'/'no', monthly spend next year): strings, numbers with gaps, and an int column."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({
        "plan": rng.choice(["basic", "pro", "max"], rows).astype(object),
        "region": rng.choice(["north", "south", "east", "west"], rows).astype(object),
        "tenure": rng.integers(1, 60, rows).astype(np.float64),
        "spend": rng.normal(50, 15, rows),
        "seats": rng.integers(1, 20, rows),  # left to remainder="passthrough"
    })
    frame.loc[::9, "tenure"] = np.nan
    churned = np.where(frame["tenure"].fillna(30) < 20, "yes", "no").astype(object)
    return frame, churned, frame["spend"].to_numpy() * 1.1 + frame["seats"].to_numpy()


def encoded(model) -> Pipeline:
    """The usual preprocessing in front of a model."""
    prep = ColumnTransformer([
        ("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ("region", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["region"]),
        ("num", make_pipeline(SimpleImputer(), StandardScaler()), NUMBERS),
    ], remainder="passthrough")
    return Pipeline([("prep", prep), ("model", model)])


def categorical(model) -> Pipeline:
    """HistGradientBoosting's own categorical support: ordinal codes in front, missing values left in."""
    prep = ColumnTransformer([("cat", OrdinalEncoder(), STRINGS)], remainder="passthrough")
    return Pipeline([("prep", prep), ("model", model)])


FAMILIES = {
    "logistic-regression": (lambda: encoded(LogisticRegression(max_iter=1000)), "classifier"),
    "ridge": (lambda: encoded(Ridge()), "regressor"),
    "decision-tree": (lambda: encoded(DecisionTreeClassifier(max_depth=4)), "classifier"),
    "random-forest": (lambda: encoded(RandomForestRegressor(n_estimators=5, random_state=0)), "regressor"),
    "extra-trees": (lambda: encoded(ExtraTreesClassifier(n_estimators=5, random_state=0)), "classifier"),
    "gradient-boosting": (lambda: encoded(GradientBoostingClassifier(n_estimators=5)), "classifier"),
    "hist-gradient-boosting-one-hot": (  # issue 23's pipeline
        lambda: encoded(HistGradientBoostingClassifier(max_iter=10)), "classifier"),
    "hist-gradient-boosting-classifier": (
        lambda: categorical(HistGradientBoostingClassifier(categorical_features=[0, 1], max_iter=10)), "classifier"),
    "hist-gradient-boosting-regressor": (
        lambda: categorical(HistGradientBoostingRegressor(categorical_features=[0, 1], max_iter=10)), "regressor"),
    "svc": (lambda: encoded(SVC(probability=True, random_state=0)), "classifier"),
    "svr": (lambda: encoded(SVR()), "regressor"),
    "k-neighbors": (lambda: encoded(KNeighborsClassifier(n_neighbors=3)), "classifier"),
    "gaussian-nb": (lambda: encoded(GaussianNB()), "classifier"),
}


def fitted(family: str):
    make, kind = FAMILIES[family]
    frame, churned, spend = churn_frame()
    return frame, make().fit(frame, churned if kind == "classifier" else spend)


@pytest.mark.filterwarnings("ignore:The `probability` parameter was deprecated:FutureWarning")
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_builds_and_serves_with_no_trust_flags(tmp_path, family):
    frame, estimator = fitted(family)
    path = dump_model(estimator, tmp_path, family)
    checked = check_model(ModelSource(family, path), set())  # `swarmml build --model` with no --trust
    assert checked.sklearn_version == sklearn.__version__
    assert [i["name"] for i in checked.signature["inputs"]] == list(frame.columns)
    # The image's meta.json, then the model service's own loader with no operator list at all.
    with open(os.path.join(tmp_path, family, "meta.json"), "w") as f:
        json.dump(checked.meta_json("1"), f)
    loaded = service.load_models(str(tmp_path), [family], service.load_trusted_types(None, ""))[family]
    assert loaded.estimator.predict(frame).tolist() == estimator.predict(frame).tolist()


def double(X):
    """A user's own function: refused, since only the user can vouch for it."""
    return X * 2


class Doubler(TransformerMixin, BaseEstimator):
    """A user's own estimator class: a scikit-learn subclass, but its code is not scikit-learn's."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X * 2


OUTSIDERS = {
    "own-function": (lambda: FunctionTransformer(double), f"{__name__}.double"),
    "own-class": (lambda: Doubler(), f"{__name__}.Doubler"),
    "numpy-function": (lambda: FunctionTransformer(np.nan_to_num), "numpy.nan_to_num"),
    "builtin": (lambda: FunctionTransformer(eval), "builtins.eval"),
    # partial is trusted, what it calls is checked on its own; a trusted class's methods are not trusted.
    "partial-of-own-function": (lambda: FunctionTransformer(functools.partial(double)), f"{__name__}.double"),
    "bound-method": (lambda: FunctionTransformer(StandardScaler().fit([[0.0], [1.0]]).transform),
                     "sklearn.preprocessing._data.StandardScaler.transform"),
}


@pytest.mark.parametrize("outsider", sorted(OUTSIDERS))
def test_a_type_from_outside_the_default_is_still_refused_with_one_line(tmp_path, outsider):
    make, refused = OUTSIDERS[outsider]
    # Unfitted: the types are refused before anything is loaded (and eval could not be fitted anyway).
    path = dump_model(make_pipeline(make(), LogisticRegression()), tmp_path, outsider)
    with pytest.raises(ModelRejected) as err:
        check_model(ModelSource(outsider, path), set())
    assert str(err.value) == (f"{path}: needs types you have not trusted: {refused}; if you trust them, "
                              f"pass --trust {refused} (or list them in a --trust-file)")
    with pytest.raises(service.ModelError, match=f"types not in the operator's trusted list: {refused}$"):
        service.load_models(str(tmp_path), [outsider], set())


def test_trust_flags_add_to_the_default(tmp_path):
    frame, churned, _ = churn_frame()
    estimator = encoded(make_pipeline(FunctionTransformer(double), DecisionTreeClassifier())).fit(frame, churned)
    path = dump_model(estimator, tmp_path, "own")
    flag = f"{__name__}.double"
    assert check_model(ModelSource("own", path), {flag}).n_features == frame.shape[1]
    loaded = service.load_models(str(tmp_path), ["own"], service.load_trusted_types(None, flag))["own"]
    assert loaded.estimator.predict(frame).tolist() == estimator.predict(frame).tolist()


def resolve(name: str):
    """What skops gets for a trusted name: the module's attribute of that name."""
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def test_the_default_is_derived_from_the_libraries_and_holds_no_code_but_theirs():
    from sklearn.utils.discovery import all_estimators
    from swarmml_model_service.trust import default_trusted_types
    trusted = default_trusted_types()
    internals = {"numpy.dtype", "sklearn.tree._tree.Tree", "sklearn.utils._bunch.Bunch",
                 "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
                 "sklearn.neighbors._kd_tree.KDTree", "sklearn.metrics._dist_metrics.EuclideanDistance64",
                 "sklearn._loss.loss.HalfBinomialLoss", "scipy.sparse._csr.csr_matrix"}
    if hasattr(importlib.import_module("sklearn.compose._column_transformer"), "_RemainderColsList"):
        internals.add("sklearn.compose._column_transformer._RemainderColsList")  # scikit-learn 1.5 to 1.8
    assert internals <= trusted
    assert {f"{c.__module__}.{c.__name__}" for _, c in all_estimators()} <= trusted
    # Every name is a class of those libraries, and resolves to it; the two callables are named for why.
    assert all(n.startswith(("sklearn.", "numpy.", "scipy.sparse.")) or n == "functools.partial" for n in trusted)
    callables = sorted(n for n in trusted if not inspect.isclass(resolve(n)))
    assert callables == ["sklearn.utils.validation.check_array"]
    # What runs other code, does I/O, or is a test double stays out.
    for outside in ("numpy.memmap", "sklearn.utils.parallel.Parallel", "sklearn.utils._testing.TempMemmap",
                    "sklearn.callback._scoring_monitor.ScoringMonitor", "sklearn.datasets._base.RemoteFileMetadata",
                    "numpy.load", "builtins.eval"):
        assert outside not in trusted
    assert not [n for n in trusted if ".externals." in n or ".tests." in n]
