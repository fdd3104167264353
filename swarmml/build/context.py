"""The predictor image's build context, assembled from the installed package.

Everything comes from what pip installed (the model service's source, the
Dockerfile and the trusted-types list are package data), so `swarmml build`
works from a wheel in an empty directory. The context lives in swarmml's
cache, one directory per requirement set, so that wheels are downloaded once
per scikit-learn version and a build with nothing changed is a cache hit.

Wheels are downloaded on this machine: pip inside a container may not reach
PyPI over HTTPS.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata, resources

from swarmml.build.artifacts import CheckedModel
from swarmml.console import note
from swarmml.errors import SwarmmlError, UsageError
from swarmml_model_service.models import sha256_file

# The image's Python (python:3.11-slim, or Debian bookworm's python3 on the local base).
PYTHON_TAGS = ["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--abi", "abi3",
               "--abi", "none", "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64",
               "--platform", "manylinux_2_28_x86_64"]
SERVE_EXTRA = "serve"
DATA = resources.files("swarmml") / "data" / "predictor"


def cache_dir() -> str:
    root = os.environ.get("SWARMML_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "swarmml")
    return root


def serve_requirements() -> list[str]:
    """The model service's dependencies, as declared once: swarmml's `serve` extra."""
    reqs = []
    for req in metadata.requires("swarmml") or []:
        spec, _, marker = req.partition(";")
        if re.search(r"""extra\s*==\s*["']%s["']""" % SERVE_EXTRA, marker):
            reqs.append(spec.strip())
    if not reqs:
        raise SwarmmlError("swarmml's metadata lists no 'serve' dependencies; reinstall swarmml")
    return reqs


def pin_requirements(reqs: list[str], sklearn_version: str | None, skops_version: str | None,
                     frames: bool = True) -> list[str]:
    """Pure: scikit-learn pinned to the models' version; skops at least the one that wrote them.

    pandas only when a model takes a DataFrame (frames): scikit-learn imports pandas whenever it is
    installed, which costs every replica's start and memory even when no model needs it.
    """
    pinned = []
    for req in reqs:
        name = re.split(r"[\s<>=!~\[;]", req, maxsplit=1)[0].lower().replace("_", "-")
        if name == "pandas" and not frames:
            continue
        if name == "scikit-learn" and sklearn_version:
            req = f"scikit-learn=={sklearn_version}"
        elif name == "skops" and skops_version:
            req = f"skops>={skops_version}"
        pinned.append(req)
    return pinned


def requirements_text(reqs: list[str]) -> str:
    return "# The model service's dependencies, installed offline from wheels downloaded on the host.\n" + \
        "".join(r + "\n" for r in reqs)


def context_dir(requirements: str) -> str:
    """One context per requirement set (and image Python): its wheels are downloaded once."""
    key = hashlib.sha256((requirements + " ".join(PYTHON_TAGS)).encode()).hexdigest()[:16]
    return os.path.join(cache_dir(), "predictor", key)


def check_wheel(sklearn_version: str, models: list[CheckedModel]) -> None:
    """Fail before building when no scikit-learn wheel of that version exists for the image's Python."""
    probe = os.path.join(cache_dir(), "probe", f"scikit-learn-{sklearn_version}")
    if os.path.isdir(probe) and os.listdir(probe):
        return
    done = pip_download([f"scikit-learn=={sklearn_version}", "--no-deps"], probe)
    if done.returncode != 0:
        names = ", ".join(m.artifact for m in models if m.sklearn_version == sklearn_version)
        raise SwarmmlError(f"{names}: no scikit-learn {sklearn_version} wheel for the image's Python 3.11 "
                           f"({pip_reason(done)}); refit the model with a scikit-learn that has one")


def prepare(models: list[CheckedModel], trusted: set[str], sklearn_version: str | None,
            model_version: str) -> str:
    """Write the context; returns its directory."""
    skops = max((m.skops_version for m in models if m.skops_version), default=None, key=_version_key)
    frames = any((m.signature or {}).get("columns") for m in models)
    reqs = requirements_text(pin_requirements(serve_requirements(), sklearn_version, skops, frames))
    ctx = context_dir(reqs)
    os.makedirs(ctx, exist_ok=True)
    _download_wheels(ctx, reqs)
    write_if_changed(os.path.join(ctx, "Dockerfile"), (DATA / "Dockerfile").read_bytes())
    write_if_changed(os.path.join(ctx, "requirements.txt"), reqs.encode())
    write_if_changed(os.path.join(ctx, "trusted-types.txt"), trust_file_text(trusted).encode())
    sync_tree(str(resources.files("swarmml_model_service")), os.path.join(ctx, "swarmml_model_service"))
    _write_models(os.path.join(ctx, "models"), models, model_version)
    return ctx


def default_trusted_types() -> set[str]:
    """The types swarmml's image trusts beyond skops' defaults (package data)."""
    text = (DATA / "trusted-types.txt").read_text()
    return parse_trust_text(text)


def parse_trust_text(text: str) -> set[str]:
    """Pure: one type per line, # comments."""
    return {line.split("#", 1)[0].strip() for line in text.splitlines()} - {""}


def read_trust_file(path: str) -> set[str]:
    try:
        with open(path) as f:
            return parse_trust_text(f.read())
    except OSError as exc:
        raise UsageError(f"--trust-file {path}: can't read it ({exc.strerror})") from None


def trust_file_text(trusted: set[str]) -> str:
    return ("# Types the operator allows skops to load, beyond skops' own safe defaults.\n"
            "# Written by `swarmml build` from its defaults, --trust and --trust-file.\n"
            + "".join(t + "\n" for t in sorted(trusted)))


def _write_models(models_dir, models, model_version):
    os.makedirs(models_dir, exist_ok=True)
    wanted = {m.name for m in models}
    for stale in set(os.listdir(models_dir)) - wanted:
        shutil.rmtree(os.path.join(models_dir, stale))
    for m in models:
        mdir = os.path.join(models_dir, m.name)
        os.makedirs(mdir, exist_ok=True)
        fname = "model.skops" if m.format == "skops" else "model" + os.path.splitext(m.artifact)[1]
        for old in set(os.listdir(mdir)) - {fname, fname + ".sha256", "meta.json"}:
            os.remove(os.path.join(mdir, old))
        target = os.path.join(mdir, fname)
        if not (os.path.exists(target) and sha256_file(target) == m.sha256):
            shutil.copyfile(m.artifact, target)
        write_if_changed(target + ".sha256", f"{m.sha256}  {fname}\n".encode())
        write_if_changed(os.path.join(mdir, "meta.json"),
               json.dumps(m.meta_json(model_version), indent=2, sort_keys=True).encode())


def _download_wheels(ctx, reqs):
    wheels = os.path.join(ctx, "wheels")
    stamp = os.path.join(wheels, ".complete")
    if os.path.exists(stamp):
        return
    os.makedirs(wheels, exist_ok=True)
    req_file = os.path.join(ctx, "requirements.txt")
    write_if_changed(req_file, reqs.encode())
    note("downloading wheels for the predictor image (on this machine, once per scikit-learn version) ...")
    done = pip_download(["-r", req_file], wheels)
    if done.returncode != 0:
        raise SwarmmlError(f"downloading the predictor's wheels failed: {pip_reason(done)}")
    open(stamp, "w").close()


def pip_download(args, dest):
    os.makedirs(dest, exist_ok=True)
    return subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                           "--only-binary=:all:", *PYTHON_TAGS, "-d", dest, *args], capture_output=True, text=True)


def pip_reason(done):
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["pip said nothing"])[0].removeprefix("ERROR: ")


def sync_tree(src: str, dst: str, skip_dirs: tuple[str, ...] = (), only: tuple[str, ...] | None = None) -> None:
    """Copy a package's source (files ending in `only`, when given), leaving unchanged files alone (their
    mtimes too) and dropping stale ones: the build cache then holds."""
    keep = set()
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = [d for d in dirnames if d != "__pycache__" and d not in skip_dirs]
        rel = os.path.relpath(dirpath, src)
        for fname in filenames:
            if fname.endswith((".pyc", ".pyo")) or (only and not fname.endswith(only)):
                continue
            relpath = os.path.normpath(os.path.join(rel, fname))
            keep.add(relpath)
            with open(os.path.join(dirpath, fname), "rb") as f:
                write_if_changed(os.path.join(dst, relpath), f.read())
    for dirpath, _, filenames in os.walk(dst):
        for fname in filenames:
            path = os.path.join(dirpath, fname)
            if os.path.relpath(path, dst) not in keep:
                os.remove(path)


def write_if_changed(path: str, content: bytes) -> None:
    """Write only when the content differs, so an unchanged context stays byte- and time-identical."""
    if os.path.exists(path):
        with open(path, "rb") as f:
            if f.read() == content:
                return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content)


def _version_key(v):
    return tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.+-]", v))
