"""Load stack files the way `docker stack deploy -c A -c B` does.

Each file is read, interpolated, validated and normalized on its own (errors
name that file), then the files merge in order with docker/cli's rules:
a service's mappings merge key by key; its ports are keyed by published
port, its volumes by target, its secrets and configs by source; command and
entrypoint are replaced; other lists are appended; a logging section with
another driver replaces the old one; top-level networks, volumes, secrets
and configs are replaced whole, name by name.

Relative paths (config and secret files, env_file, bind-mount sources) are
resolved against the directory of the FIRST file and cleaned, as docker/cli
does; absolute ones are kept as written.

Deliberate differences from docker/cli:
- an .env file (beside the first file, or --env-file) feeds interpolation,
  the process environment winning over it (docker stack deploy reads none);
- the stack name may come from the file (`name:` or `x-swarmml: {stack: NAME}`);
- healthcheck.test is replaced by a later file (docker/cli appends the two
  commands into one that cannot run);
- ports without a published port are kept apart when files merge (docker/cli
  keys ports by published port only, so all unpublished ports fold into one);
- nested defaults (${A:-${B}}) and ${VAR:+alt} are read as the compose
  specification says, with a warning: docker/cli refuses or misreads them.
"""
import copy
import os
import re
import sys
from dataclasses import dataclass, field

import yaml

from swarmml.errors import UsageError
from swarmml.stack.interpolate import interpolate, read_env_file, read_service_env_file, unsupported_by_docker_cli
from swarmml.stack.schema import validate

# docker/cli accepts letters, digits, '_' and '-' in a stack name.
STACK_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
# The engine's limit on a service name, which is `<stack>_<service>`.
MAX_SERVICE_NAME = 63


@dataclass
class LoadedStack:
    name: str
    config: dict
    files: list
    workdir: str
    warnings: list = field(default_factory=list)
    environ: dict = field(default_factory=dict)


def load(paths, name=None, environ=None, env_file=None):
    """Read, interpolate, validate and merge stack files -> LoadedStack (UsageError on bad input)."""
    if not paths:
        raise UsageError("no stack file given")
    paths = [str(p) for p in paths]
    # As docker/cli: relative paths start from the first file's directory (the current one for stdin, "-").
    workdir = os.getcwd() if paths[0] == "-" else os.path.dirname(os.path.abspath(paths[0]))
    env = dict(os.environ if environ is None else environ)
    if env_file is not None and not os.path.isfile(env_file):
        raise UsageError(f"--env-file: {env_file} does not exist")
    env_path = env_file or os.path.join(workdir, ".env")
    if os.path.isfile(env_path):
        # The process environment wins over the .env file, as with docker compose.
        env = {**read_env_file(env_path), **env}

    docs, warnings = [], []
    for shown in paths:
        raw = read_yaml(shown)
        doc, file_warnings = validate(interpolate(raw, env, shown), shown)
        _resolve_file(doc, shown, workdir, env)
        docs.append((shown, doc))
        warnings += unsupported_by_docker_cli(raw, shown) + file_warnings
    versions = {doc["version"] for _, doc in docs if "version" in doc}
    if len({v if "." in v else v + ".0" for v in versions}) > 1:
        raise UsageError(f"{', '.join(paths)}: version: the files declare different versions "
                         f"({', '.join(sorted(versions))})")
    merged = {}
    for _, doc in docs:
        merged = merge_files(merged, doc)

    stack_name = _stack_name(name, merged, paths)
    services = merged.get("services") or {}
    if not services:
        raise UsageError(f"{paths[0]}: services: at least one service is needed")
    where = paths[0] if len(paths) == 1 else ", ".join(paths)
    for sname, svc in services.items():
        if not svc.get("image"):
            raise UsageError(f"{where}: services.{sname}.image: is required "
                             "(Swarm runs images; build and push it first)")
        if len(f"{stack_name}_{sname}") > MAX_SERVICE_NAME:
            raise UsageError(f"{where}: services.{sname}: the service name {stack_name}_{sname} is longer than "
                             f"{MAX_SERVICE_NAME} characters, the engine's limit")
    _check_references(merged, where)
    return LoadedStack(stack_name, merged, paths, workdir, warnings, env)


class _StrictLoader(yaml.SafeLoader):
    """YAML read as docker/cli reads it (gopkg.in/yaml.v3, YAML 1.2 scalars): `yes`, `on` and `22:22` stay
    strings (PyYAML's YAML 1.1 would make them a boolean and a base-60 number), 1e8 is a number, and a key
    given twice in one mapping is an error (PyYAML would keep the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} is given twice in one mapping",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node):
        text = self.construct_scalar(node).replace("_", "")
        sign = -1 if text.startswith("-") else 1
        text = text.lstrip("+-")
        for prefix, base in (("0o", 8), ("0x", 16), ("0b", 2)):
            if text.startswith(prefix):
                return sign * int(text[2:], base)
        try:
            return sign * int(text, 8 if len(text) > 1 and text.startswith("0") else 10)
        except ValueError:  # "08": not octal; yaml.v3 then reads it as the number 8.0
            return sign * float(text)

    def construct_yaml_float(self, node):
        text = self.construct_scalar(node).replace("_", "").lower()
        if text.lstrip("+-") == ".inf":
            return float("-inf") if text.startswith("-") else float("inf")
        return float("nan") if text == ".nan" else float(text)


_StrictLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
        ("null", r"^(?:~|null|Null|NULL|)$", "~nN"),
        ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
        ("int", r"^[-+]?(?:[0-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+)$", "-+0123456789"),
        ("float", r"^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
                  r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+.0123456789"),
        ("merge", r"^(?:<<)$", "<")):
    _StrictLoader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first) + (
        [""] if _tag == "null" else []))
_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _StrictLoader.construct_mapping)
_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)
_StrictLoader.add_constructor("tag:yaml.org,2002:float", _StrictLoader.construct_yaml_float)


def read_yaml(shown):
    try:
        if shown == "-":
            doc = yaml.load(sys.stdin, Loader=_StrictLoader)  # noqa: S506 (a safe loader)
        else:
            with open(shown, encoding="utf-8") as f:
                doc = yaml.load(f, Loader=_StrictLoader)  # noqa: S506 (a safe loader)
    except FileNotFoundError:
        raise UsageError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{shown}: is a directory, expected a stack file") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{shown}: not UTF-8 text ({exc.reason})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark else shown
        raise UsageError(f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if doc is None:
        raise UsageError(f"{shown}: the file is empty")
    return doc


def _stack_name(given, merged, paths):
    ext = merged.get("x-swarmml") if isinstance(merged.get("x-swarmml"), dict) else {}
    stack_name = given or merged.get("name") or ext.get("stack")
    if not stack_name:
        raise UsageError(f"{paths[0]}: no stack name; give --name, a top-level `name:` or `x-swarmml: {{stack: NAME}}`")
    if not isinstance(stack_name, str) or not STACK_NAME_RE.match(stack_name):
        raise UsageError(f"stack name {stack_name!r}: expected letters, digits, '_' and '-', "
                         "starting with a letter or digit")
    return stack_name


# --- per-file resolution, as docker/cli's loader does before merging ----------------

def _resolve_file(doc, shown, workdir, env):
    def absolute(p):
        # As docker/cli's absPath: an absolute path reaches the engine as written (a bind source
        # "/var/lib/docker/" keeps its slash); only a relative one is joined to workdir and cleaned.
        if p.startswith("~"):
            p = (env.get("HOME") or os.path.expanduser("~")) + p[1:]
        return p if os.path.isabs(p) else os.path.normpath(os.path.join(workdir, p))

    for kind in ("configs", "secrets"):
        for oname, obj in (doc.get(kind) or {}).items():
            if obj.get("external"):
                continue
            if "file" in obj:
                obj["file"] = absolute(obj["file"])
            elif "environment" in obj:
                var = obj["environment"]
                if var not in env:
                    raise UsageError(f"{shown}: {kind}.{oname}.environment: variable {var} is not set")
                obj["content"] = env[var]
    for sname, svc in (doc.get("services") or {}).items():
        for vol in svc.get("volumes") or []:
            if vol["type"] == "bind" and not re.match(r"^([A-Za-z]:|\\\\)", vol["source"]):
                vol["source"] = absolute(vol["source"])
        _resolve_environment(svc, sname, shown, env, absolute)


def _resolve_environment(svc, sname, shown, env, absolute):
    """env_file, then environment; a variable with no (or an empty) value takes the environment's, as docker/cli."""
    if "env_file" not in svc and "environment" not in svc:
        return
    values = {}
    for i, f in enumerate(svc.pop("env_file", None) or []):
        path = absolute(f)
        if not os.path.isfile(path):
            raise UsageError(f"{shown}: services.{sname}.env_file[{i}]: {path} does not exist")
        values.update(read_service_env_file(path, f, env))
    values.update(svc.get("environment") or {})
    svc["environment"] = {k: (env[k] if v in (None, "") and k in env else v) for k, v in values.items()}


# --- merging ------------------------------------------------------------------------

def _port_key(p):
    return p.get("published") or ("unpublished", p["target"], p.get("protocol") or "tcp")


SERVICE_LIST_KEYS = {
    "ports": (_port_key, None),
    "volumes": (lambda v: v["target"], "target"),
    "secrets": (lambda s: s["source"], "source"),
    "configs": (lambda s: s["source"], "source"),
}
REPLACED = {("command",), ("entrypoint",), ("healthcheck", "test")}


def merge_files(base, override):
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key == "services" and isinstance(out.get(key), dict):
            services = out[key]
            for sname, svc in value.items():
                services[sname] = merge_service(services[sname], svc) if sname in services else copy.deepcopy(svc)
        elif key in ("networks", "volumes", "secrets", "configs") and isinstance(out.get(key), dict):
            out[key].update(copy.deepcopy(value))  # replaced whole, per name
        else:
            out[key] = copy.deepcopy(value)
    return out


def merge_service(base, override, path=()):
    out = copy.deepcopy(base)
    for key, value in override.items():
        here = path + (key,)
        old = out.get(key)
        if not path and key in SERVICE_LIST_KEYS and isinstance(old, list):
            ident, order = SERVICE_LIST_KEYS[key]
            items = {ident(x): x for x in old}
            items.update({ident(x): copy.deepcopy(x) for x in value})
            merged = list(items.values())
            out[key] = sorted(merged, key=lambda x: x.get(order, "")) if order else merged
        elif here in REPLACED or old is None:
            out[key] = copy.deepcopy(value)
        elif not path and key == "logging" and isinstance(old, dict):
            if old.get("driver") and value.get("driver") and old["driver"] != value["driver"]:
                out[key] = copy.deepcopy(value)
            else:
                out[key] = merge_service(old, value, here)
        elif not path and key == "networks" and isinstance(old, dict):
            nets = out[key]
            for net, cfg in value.items():
                if cfg is None:
                    nets.setdefault(net, None)
                elif nets.get(net) is None:
                    nets[net] = copy.deepcopy(cfg)
                else:
                    nets[net] = {**nets[net], **copy.deepcopy(cfg)}
        elif isinstance(old, dict) and isinstance(value, dict):
            out[key] = merge_service(old, value, here)
        elif isinstance(old, list) and isinstance(value, list):
            out[key] = old + copy.deepcopy(value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# --- references between sections ---------------------------------------------------

def _check_references(config, where):
    networks = config.get("networks") or {}
    volumes = config.get("volumes") or {}
    for sname, svc in config["services"].items():
        for net in svc.get("networks") or {}:
            if net not in networks and net != "default":
                raise UsageError(f"{where}: services.{sname}.networks.{net}: undefined network "
                                 "(add it under networks:)")
        for kind in ("secrets", "configs"):
            defined = config.get(kind) or {}
            for i, ref in enumerate(svc.get(kind) or []):
                if ref["source"] not in defined:
                    raise UsageError(f"{where}: services.{sname}.{kind}[{i}]: undefined {kind[:-1]} {ref['source']!r} "
                                     f"(add it under {kind}:)")
        for i, vol in enumerate(svc.get("volumes") or []):
            if vol["type"] in ("volume", "cluster") and vol.get("source") and vol["source"] not in volumes \
                    and not vol["source"].startswith("group:"):
                raise UsageError(f"{where}: services.{sname}.volumes[{i}]: undefined volume {vol['source']!r} "
                                 "(add it under volumes:)")
        cred = (svc.get("credential_spec") or {}).get("config")
        if cred and cred not in (config.get("configs") or {}):
            raise UsageError(f"{where}: services.{sname}.credential_spec.config: undefined config {cred!r}")
    for kind in ("configs", "secrets"):
        for oname, obj in (config.get(kind) or {}).items():
            if obj.get("file") and not os.path.isfile(obj["file"]):
                raise UsageError(f"{where}: {kind}.{oname}.file: {obj['file']} does not exist")
