"""Load stack files: read, interpolate, validate, merge in order (like repeated -c), name the stack."""
import copy
import os
import re
from dataclasses import dataclass, field

import yaml

from swarmml.errors import UsageError
from swarmml.stack.interpolate import interpolate, read_env_file
from swarmml.stack.schema import validate, warnings_for

STACK_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# Lists merged item by item when a later file overrides a service (keyed as docker/cli does).
MERGE_KEYS = {
    "ports": lambda p: p if isinstance(p, str) else (p.get("published"), p["target"], p.get("protocol", "tcp")),
    "secrets": lambda s: s if isinstance(s, str) else s["source"],
    "configs": lambda s: s if isinstance(s, str) else s["source"],
    "volumes": lambda v: v.split(":")[1] if isinstance(v, str) and ":" in v else (v if isinstance(v, str) else v["target"]),
}


@dataclass
class LoadedStack:
    name: str
    config: dict
    files: list
    workdir: str
    warnings: list = field(default_factory=list)


def load(paths, name=None, environ=None, env_file=None):
    if not paths:
        raise UsageError("no stack file given")
    files = [os.path.abspath(p) for p in paths]
    workdir = os.path.dirname(files[0])
    env = dict(os.environ if environ is None else environ)
    env_path = env_file or os.path.join(workdir, ".env")
    if env_file and not os.path.exists(env_file):
        raise UsageError(f"--env-file: {env_file} does not exist")
    if os.path.exists(env_path):
        # The process environment wins over the .env file, as with docker compose.
        env = {**read_env_file(env_path), **env}

    merged, warnings = {}, []
    for path, shown in zip(files, paths):
        doc = validate(interpolate(read_yaml(path, shown), env, shown), shown)
        warnings += warnings_for(doc, shown)
        _resolve_paths(doc, os.path.dirname(path) if len(files) == 1 else workdir, shown)
        merged = merge(merged, doc)

    ext = merged.get("x-swarmml") if isinstance(merged.get("x-swarmml"), dict) else {}
    stack_name = name or merged.get("name") or ext.get("stack")
    if not stack_name:
        raise UsageError(f"{paths[0]}: no stack name; give --name, a top-level `name:` or `x-swarmml: {{stack: NAME}}`")
    if not STACK_NAME_RE.match(stack_name):
        raise UsageError(f"stack name {stack_name!r}: expected lowercase letters, digits, '_' and '-'")
    services = merged.get("services") or {}
    if not services:
        raise UsageError(f"{paths[0]}: services: at least one service is needed")
    for sname, svc in services.items():
        if not svc.get("image"):
            raise UsageError(f"{_where(paths, sname)}: services.{sname}.image: is required (Swarm deploys images)")
        _check_references(merged, sname, svc, paths)
        _apply_env_files(svc, sname, paths)
    return LoadedStack(stack_name, merged, list(paths), workdir, warnings)


def read_yaml(path, shown):
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except FileNotFoundError:
        raise UsageError(f"{shown}: no such file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark else shown
        raise UsageError(f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if doc is None:
        raise UsageError(f"{shown}: the file is empty")
    # Interpolation runs on the parsed tree, so a document-level error there names the key path.
    return doc


def merge(base, override):
    """Later files override earlier ones: mappings merge, lists keyed per MERGE_KEYS, others replace."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key in out and isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = merge(out[key], value)
        elif key in MERGE_KEYS and isinstance(out.get(key), list) and isinstance(value, list):
            ident = MERGE_KEYS[key]
            items = {ident(x): x for x in out[key]}
            items.update({ident(x): x for x in value})
            out[key] = list(items.values())
        else:
            out[key] = copy.deepcopy(value)
    return out


def _resolve_paths(doc, base_dir, shown):
    for kind in ("configs", "secrets"):
        for obj in (doc.get(kind) or {}).values():
            if obj.get("file"):
                obj["file"] = os.path.normpath(os.path.join(base_dir, os.path.expanduser(obj["file"])))
    for svc in (doc.get("services") or {}).values():
        if "env_file" in svc:
            files = [svc["env_file"]] if isinstance(svc["env_file"], str) else svc["env_file"]
            svc["env_file"] = [os.path.normpath(os.path.join(base_dir, f)) for f in files]


def _where(paths, _service):
    return paths[0] if len(paths) == 1 else ", ".join(paths)


def _check_references(config, sname, svc, paths):
    where = _where(paths, sname)
    networks = config.get("networks") or {}
    for net in (svc.get("networks") or {}):
        if net not in networks and net != "default":
            raise UsageError(f"{where}: services.{sname}.networks.{net}: undefined network (add it under networks:)")
    for kind in ("secrets", "configs"):
        defined = config.get(kind) or {}
        for i, ref in enumerate(svc.get(kind) or []):
            source = ref if isinstance(ref, str) else ref["source"]
            if source not in defined:
                raise UsageError(f"{where}: services.{sname}.{kind}[{i}]: undefined {kind[:-1]} {source!r}")
    volumes = config.get("volumes") or {}
    for i, vol in enumerate(svc.get("volumes") or []):
        source = vol.get("source") if isinstance(vol, dict) else (vol.split(":")[0] if ":" in vol else None)
        vtype = vol.get("type", "volume") if isinstance(vol, dict) else "volume"
        if source and vtype == "volume" and not source.startswith(("/", ".", "~")) and source not in volumes:
            raise UsageError(f"{where}: services.{sname}.volumes[{i}]: undefined volume {source!r}")
    for kind in ("configs", "secrets"):
        for oname, obj in (config.get(kind) or {}).items():
            if obj.get("file") and not os.path.exists(obj["file"]):
                raise UsageError(f"{where}: {kind}.{oname}.file: {obj['file']} does not exist")
            if not obj.get("external") and not obj.get("file") and "content" not in obj and "environment" not in obj:
                raise UsageError(f"{where}: {kind}.{oname}: needs file, content, environment or external")


def _apply_env_files(svc, sname, paths):
    files = svc.pop("env_file", None) or []
    if not files:
        return
    env = {}
    for path in files:
        if not os.path.exists(path):
            raise UsageError(f"{_where(paths, sname)}: services.{sname}.env_file: {path} does not exist")
        env.update(read_env_file(path))
    env.update(svc.get("environment") or {})
    svc["environment"] = env
