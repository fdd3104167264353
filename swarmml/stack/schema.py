"""Validate and normalize one compose file, for the keys Swarm stacks use.

Hand-written: no maintained Python package ships the compose specification's
schema (docker-compose 1.x, which did, is unmaintained and pins old
dependencies). Checking and casting in one pass also lets values that were
strings after interpolation (`replicas: ${N:-2}`) become the integers and
booleans they stand for, as docker/cli does, and each error names the file,
the key path and what was expected.
"""
import json
import re

from swarmml.errors import UsageError


class Invalid(Exception):
    def __init__(self, path, message):
        super().__init__(message)
        self.path, self.message = path, message


def _got(value):
    return json.dumps(value) if isinstance(value, (str, int, float, bool)) or value is None else type(value).__name__


def expected(path, what, value):
    raise Invalid(path, f"expected {what}, got {_got(value)}")


# --- scalar checkers: (value, path) -> normalized value -------------------------

def string(v, p):
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        expected(p, "a string", v)
    return str(v)


def integer(v, p):
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and re.fullmatch(r"-?\d+", v.strip()):
        return int(v)
    expected(p, "an integer", v)


def non_negative(v, p):
    n = integer(v, p)
    if n < 0:
        expected(p, "a non-negative integer", v)
    return n


def number(v, p):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            pass
    expected(p, "a number", v)


def boolean(v, p):
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false", "yes", "no"):
        return v.lower() in ("true", "yes")
    expected(p, "true or false", v)


DURATION_RE = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")


def duration(v, p):
    if isinstance(v, str) and DURATION_RE.match(v.strip()):
        return v.strip()
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v}s"
    expected(p, 'a duration like "10s" or "1m30s"', v)


BYTES_RE = re.compile(r"^\d+(\.\d+)?\s*([bkmg]b?|[bkmg]i?b?)?$", re.I)


def byte_size(v, p):
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and BYTES_RE.match(v.strip()):
        return v.strip()
    expected(p, 'a size like "512M" or "1G"', v)


def cpus(v, p):
    n = number(v, p)
    if n <= 0:
        expected(p, "a positive number of CPUs", v)
    return str(v) if isinstance(v, str) else v


def one_of(*choices):
    def check(v, p):
        if v not in choices:
            expected(p, "one of " + ", ".join(choices), v)
        return v
    return check


def str_or_list(v, p):
    if isinstance(v, str):
        return v
    return list_of(string)(v, p)


def list_of(item):
    def check(v, p):
        if not isinstance(v, list):
            expected(p, "a list", v)
        return [item(x, f"{p}[{i}]") for i, x in enumerate(v)]
    return check


def dict_of(item):
    def check(v, p):
        if not isinstance(v, dict):
            expected(p, "a mapping", v)
        return {str(k): item(x, f"{p}.{k}") for k, x in v.items()}
    return check


def nullable_string(v, p):
    return None if v is None else string(v, p)


def mapping_or_list(v, p):
    """environment / labels / sysctls: a mapping, or a list of KEY=VALUE strings."""
    if isinstance(v, dict):
        return {str(k): (None if x is None else string(x, f"{p}.{k}")) for k, x in v.items()}
    if isinstance(v, list):
        out = {}
        for i, item in enumerate(v):
            s = string(item, f"{p}[{i}]")
            key, sep, value = s.partition("=")
            out[key] = value if sep else None
        return out
    expected(p, "a mapping or a list of KEY=VALUE", v)


def obj(fields, required=(), open_keys=False):
    """A mapping with known keys; unknown keys are errors unless they start with x-."""
    def check(v, p):
        if not isinstance(v, dict):
            expected(p, "a mapping", v)
        out = {}
        for k, x in v.items():
            sub = f"{p}.{k}" if p else str(k)
            if str(k).startswith("x-"):
                out[k] = x
                continue
            if k not in fields:
                if open_keys:
                    out[k] = x
                    continue
                raise Invalid(sub, f"unknown key (allowed: {', '.join(sorted(fields))})")
            out[k] = fields[k](x, sub) if fields[k] is not None else x
        for k in required:
            if k not in out:
                raise Invalid(f"{p}.{k}" if p else k, "is required")
        return out
    return check


def either(*checks, what):
    def check(v, p):
        for c in checks:
            try:
                return c(v, p)
            except Invalid:
                continue
        expected(p, what, v)
    return check


# --- the compose tree ---------------------------------------------------------------

RESOURCE = obj({"cpus": cpus, "memory": byte_size, "pids": integer,
                "generic_resources": lambda v, p: v,
                "devices": lambda v, p: v})
DEPLOY = obj({
    "mode": one_of("replicated", "global", "replicated-job", "global-job"),
    "replicas": non_negative,
    "endpoint_mode": one_of("vip", "dnsrr"),
    "labels": mapping_or_list,
    "resources": obj({"limits": RESOURCE, "reservations": RESOURCE}),
    "restart_policy": obj({"condition": one_of("none", "on-failure", "any"), "delay": duration,
                           "max_attempts": non_negative, "window": duration}),
    "placement": obj({"constraints": list_of(string), "preferences": list_of(obj({"spread": string})),
                      "max_replicas_per_node": non_negative}),
    "update_config": obj({"parallelism": non_negative, "delay": duration,
                          "failure_action": one_of("continue", "rollback", "pause"), "monitor": duration,
                          "max_failure_ratio": number, "order": one_of("start-first", "stop-first")}),
    "rollback_config": obj({"parallelism": non_negative, "delay": duration,
                            "failure_action": one_of("continue", "pause"), "monitor": duration,
                            "max_failure_ratio": number, "order": one_of("start-first", "stop-first")}),
})
HEALTHCHECK = obj({"test": str_or_list, "interval": duration, "timeout": duration, "retries": non_negative,
                   "start_period": duration, "disable": boolean})


def port(v, p):
    if isinstance(v, (int, str)) and not isinstance(v, bool):
        s = str(v)
        if not re.fullmatch(r"(?:(?:[\d.]+:)?(\d+(?:-\d+)?):)?(\d+(?:-\d+)?)(/(tcp|udp|sctp))?", s):
            expected(p, 'a port like "8080:80" or "80/udp"', v)
        return s
    return obj({"target": non_negative, "published": either(non_negative, string, what="a port"),
                "protocol": one_of("tcp", "udp", "sctp"), "mode": one_of("host", "ingress"),
                "host_ip": string, "name": string, "app_protocol": string},
               required=("target",))(v, p)


def file_ref(v, p):
    if isinstance(v, str):
        return v
    return obj({"source": string, "target": string, "uid": string, "gid": string, "mode": integer},
               required=("source",))(v, p)


def volume_mount(v, p):
    if isinstance(v, str):
        if not v:
            expected(p, "a volume like name:/path", v)
        return v
    return obj({"type": one_of("volume", "bind", "tmpfs", "npipe", "cluster"), "source": string,
                "target": string, "read_only": boolean, "consistency": string,
                "bind": obj({"propagation": string, "create_host_path": boolean}),
                "volume": obj({"nocopy": boolean}),
                "tmpfs": obj({"size": byte_size, "mode": integer})}, required=("type", "target"))(v, p)


def service_networks(v, p):
    if isinstance(v, list):
        return {n: None for n in list_of(string)(v, p)}
    return dict_of(lambda x, q: None if x is None else obj(
        {"aliases": list_of(string), "ipv4_address": string, "ipv6_address": string,
         "driver_opts": dict_of(string)})(x, q))(v, p)


def ulimits(v, p):
    return dict_of(either(non_negative, obj({"soft": non_negative, "hard": non_negative},
                                             required=("soft", "hard")), what="a number or {soft, hard}"))(v, p)


# Keys docker stack deploy ignores: accepted with a warning, never silently dropped.
IGNORED_BY_SWARM = {
    "build": "Swarm deploys images; build it first (swarmml build)",
    "depends_on": "Swarm starts services in no order",
    "container_name": "Swarm names containers itself",
    "links": "use networks", "external_links": "use networks",
    "network_mode": "use networks", "privileged": "not supported by Swarm services",
    "cgroup_parent": "not supported by Swarm services", "devices": "not supported by Swarm services",
    "security_opt": "not supported by Swarm services", "userns_mode": "not supported by Swarm services",
    "expose": "services on one network reach each other on any port", "ipc": "not supported by Swarm services",
    "pid": "not supported by Swarm services", "shm_size": "not supported by Swarm services",
    "mac_address": "not supported by Swarm services", "domainname": "not supported by Swarm services",
    "profiles": "stacks deploy every service", "pull_policy": "use --resolve-image",
    "platform": "use deploy.placement.constraints", "cpu_count": "use deploy.resources",
    "cpus": "use deploy.resources.limits.cpus", "mem_limit": "use deploy.resources.limits.memory",
    "memswap_limit": "not supported by Swarm services",
}

SERVICE = obj({
    "image": string, "command": str_or_list, "entrypoint": str_or_list, "environment": mapping_or_list,
    "env_file": str_or_list, "labels": mapping_or_list, "deploy": DEPLOY, "healthcheck": HEALTHCHECK,
    "networks": service_networks, "ports": list_of(port), "secrets": list_of(file_ref),
    "configs": list_of(file_ref), "volumes": list_of(volume_mount), "user": string, "working_dir": string,
    "hostname": string, "stop_grace_period": duration, "stop_signal": string, "read_only": boolean,
    "init": boolean, "tty": boolean, "stdin_open": boolean, "cap_add": list_of(string), "cap_drop": list_of(string),
    "sysctls": mapping_or_list, "ulimits": ulimits, "dns": str_or_list, "dns_search": str_or_list,
    "dns_opt": list_of(string), "extra_hosts": either(list_of(string), mapping_or_list, what="a list or mapping"),
    "logging": obj({"driver": string, "options": dict_of(nullable_string)}), "isolation": string,
    "tmpfs": str_or_list, "credential_spec": lambda v, p: v,
    # Used only when deploy.restart_policy is absent, as docker/cli does.
    "restart": one_of("no", "always", "on-failure", "unless-stopped"),
    **{k: None for k in IGNORED_BY_SWARM},
})
NETWORK = obj({"driver": string, "driver_opts": dict_of(string), "attachable": boolean, "internal": boolean,
               "external": either(boolean, obj({"name": string}), what="true, false or {name}"),
               "name": string, "labels": mapping_or_list, "enable_ipv6": boolean,
               "ipam": obj({"driver": string, "config": list_of(obj({"subnet": string, "ip_range": string,
                                                                    "gateway": string,
                                                                    "aux_addresses": dict_of(string)})),
                            "options": dict_of(string)})})
VOLUME = obj({"driver": string, "driver_opts": dict_of(string), "name": string, "labels": mapping_or_list,
              "external": either(boolean, obj({"name": string}), what="true, false or {name}")})
FILE_OBJECT = obj({"file": string, "external": either(boolean, obj({"name": string}), what="true, false or {name}"),
                   "name": string, "labels": mapping_or_list, "environment": string, "content": string,
                   "template_driver": string, "driver": string, "driver_opts": dict_of(string)})


def _nullable(check):
    return lambda v, p: {} if v is None else check(v, p)


TOP = obj({
    "version": string, "name": string,
    "services": dict_of(lambda v, p: SERVICE({} if v is None else v, p)),
    "networks": dict_of(_nullable(NETWORK)), "volumes": dict_of(_nullable(VOLUME)),
    "secrets": dict_of(_nullable(FILE_OBJECT)), "configs": dict_of(_nullable(FILE_OBJECT)),
})


def validate(doc, filename):
    """The normalized document, or UsageError naming file, key path and expectation."""
    if not isinstance(doc, dict):
        raise UsageError(f"{filename}: expected a mapping at the top level, got {_got(doc)}")
    try:
        return TOP(doc, "")
    except Invalid as exc:
        raise UsageError(f"{filename}: {exc.path}: {exc.message}") from None


def warnings_for(doc, filename):
    out = []
    for name, svc in (doc.get("services") or {}).items():
        for key in svc:
            if key in IGNORED_BY_SWARM:
                out.append(f"{filename}: services.{name}.{key}: ignored by Swarm ({IGNORED_BY_SWARM[key]})")
    return out
