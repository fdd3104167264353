"""The types a skops file may hold without anyone naming them: scikit-learn's, NumPy's and SciPy's inert ones.

skops loads only the types on a trusted list. Its own defaults leave out much of what a fitted pipeline
holds (a tree's node storage, HistGradientBoosting's predictors, KDTree, loss objects, numpy.dtype, ...),
which no user can judge. The list here is derived from the libraries installed where the model is loaded,
so it follows their version: `swarmml build` derives it on the host, the model service in the image,
from the scikit-learn each loads the model with. The operator's --trust types add to it.

Where the line is. skops builds a trusted class with cls.__new__ and then its state (__setstate__ or
__dict__), or calls it with arguments from the file; a trusted name can also come back as a value (a class,
a function) that scikit-learn code may call. So a name is trusted only when all of that runs nothing but
the libraries' own code over data:
- classes of scikit-learn's own modules, whose bases are all scikit-learn's, NumPy's, SciPy's or Python's
  plain data types (joblib's Parallel is not), outside the packages listed in SKIPPED_PACKAGES;
- NumPy's dtypes and in-memory arrays (np.memmap opens files: not it);
- SciPy's sparse matrices and arrays;
- the two callables scikit-learn itself stores in a fitted estimator (see stored_callables).
Never functions beyond those (skops' own numeric ufuncs aside), bound methods (skops names them
TYPE.method, so trusting a class does not trust them) or anything of another package.

What trusting a type can't promise: that the arrays it holds are well formed. skops holds back
sklearn.tree._tree.Tree and HistGradientBoosting's TreePredictor for that reason: a crafted node index
makes predict read out of bounds (a crash, or memory leaking into predictions; no code from the file runs).
Trusting them is what lets trees build with no flags; it is only as safe as the file's origin.
"""
import functools
import importlib
import inspect
import pkgutil
import sys
import warnings

# Parts of scikit-learn whose classes no fitted model holds and which do more than compute on data:
# test doubles and checks (TempMemmap writes files), vendored third-party code, build helpers,
# `experimental` (importing it changes scikit-learn's namespace; what it enables is walked where it lives),
# the dataset loaders (files, downloads) and fit-time callbacks (local sockets: ScoringMonitor connects to
# an address from its state as it is loaded).
SKIPPED_PACKAGES = frozenset({"tests", "conftest", "_testing", "_mocking", "estimator_checks", "_test_common",
                              "externals", "_build_utils", "__check_build", "experimental",
                              "datasets", "callback"})
OWN_LIBRARIES = ("sklearn", "numpy", "scipy")
# Bases that bring no behaviour of their own beyond Python's data types.
PLAIN_BASES = frozenset({"builtins", "abc", "numbers", "enum", "typing",
                         "collections", "collections.abc", "_collections_abc"})


def refused_types(needed, trusted) -> list:
    """Of the types a skops file needs (skops.io.get_untrusted_types), those neither default nor the operator's."""
    return sorted(set(needed) - default_trusted_types() - set(trusted))


@functools.lru_cache(maxsize=None)
def default_trusted_types() -> frozenset:
    """Every name trusted by default, as skops names types: module.name."""
    found = [*sklearn_classes(), *numpy_classes(), *scipy_classes(), *stored_callables()]
    return frozenset(_name(obj) for obj in found if _reachable(obj))


def sklearn_classes() -> list:
    import sklearn
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated modules warn as they are imported
        modules = list(_walk(sklearn))
    return [obj for module in modules for obj in vars(module).values()
            if inspect.isclass(obj) and obj.__module__ == module.__name__ and _own_code(obj)]


def numpy_classes() -> list:
    import numpy as np
    dtype_module = getattr(np, "dtypes", None)  # NumPy 1.25 on
    dtype_classes = [c for c in vars(dtype_module).values() if inspect.isclass(c)] if dtype_module else []
    dtypes = [np.dtype, *np.sctypeDict.values(), *dtype_classes]
    arrays = [np.ndarray, *(c for c in _subclasses(np.ndarray)
                            if _library(c) == "numpy" and not issubclass(c, np.memmap))]
    return dtypes + arrays


def scipy_classes() -> list:
    import scipy.sparse as sparse
    containers = tuple(getattr(sparse, base) for base in ("spmatrix", "sparray") if hasattr(sparse, base))
    return [c for c in vars(sparse).values() if inspect.isclass(c) and issubclass(c, containers)]


def stored_callables() -> list:
    """What scikit-learn itself puts into a fitted estimator that can be called.

    HistGradientBoosting* with categorical features keep FunctionTransformer(partial(check_array, ...)) for
    their numeric columns. check_array only validates an array. functools.partial holds a call, but skops
    checks its function and arguments one by one, so trusting it trusts no other callable.
    """
    from sklearn.utils.validation import check_array
    return [functools.partial, check_array]


def _walk(package):
    """The package's modules, without importing (or entering) the skipped ones."""
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if SKIPPED_PACKAGES.intersection(info.name.split(".")):
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception:  # an optional dependency missing: skops could not load its classes either
            continue
        yield module
        if info.ispkg:
            yield from _walk(module)


def _own_code(cls) -> bool:
    """Every base is one of the libraries' own or a plain Python data type: no other package's code runs."""
    return all(_library(base) in OWN_LIBRARIES or base.__module__ in PLAIN_BASES for base in cls.__mro__)


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _library(obj) -> str:
    return (obj.__module__ or "").split(".", 1)[0]


def _name(obj) -> str:
    return f"{obj.__module__}.{obj.__name__}"


def _reachable(obj) -> bool:
    """skops resolves a name as getattr(module, name): trust it only where that gives this very object."""
    return getattr(sys.modules.get(obj.__module__), obj.__name__, None) is obj
