"""Validate and normalize one compose file, for the keys `docker stack deploy` reads.

Hand-written on purpose. `docker stack deploy` does not validate against the
compose specification: it uses docker/cli's own compose v3 schemas (3.0 to
3.13), which no Python package ships. The packages that do exist don't fit
either: docker-compose 1.x (whose compose_spec.json is the v2/v3 era) is
unmaintained and pins old dependencies; compose-pydantic and compose-spec
(PyPI) give pydantic models of the newer compose specification, whose keys
differ from docker/cli's (they accept `ports.host_ip`, `dns_opt`, ... that
`docker stack deploy` rejects) and whose errors don't name file and key path
the way ours must. So this module mirrors docker/cli's v3.13 schema (the
newest, a superset of the older ones) key for key, and in the same pass:

- casts values that are strings after interpolation (`replicas: ${N:-2}`) to
  the integers and booleans they stand for, as docker/cli does;
- turns short syntaxes into the long ones docker/cli's loader produces
  (ports "8080:80", volumes "data:/d:ro", "KEY=VALUE" lists, shell-string
  commands, healthcheck test strings), so merging and converting see one form;
- checks values the schema only types as strings (durations, sizes, CPUs,
  restart conditions, port ranges, image references);
- collects warnings for keys docker/cli accepts and then ignores.

Extensions beyond docker/cli's schema, each deliberate: a top-level `name:`
(the compose specification's, for the stack name; docker/cli rejects it, so
the project's own files use `x-swarmml: {stack: NAME}`), and `content:` /
`environment:` as the source of a secret's or config's data.
"""
import json
import re
import shlex
from decimal import Decimal

from swarmml.errors import UsageError
from swarmml.stack.units import nano_cpus


class Invalid(Exception):
    def __init__(self, path, message):
        super().__init__(message)
        self.path, self.message = path, message


def _got(value):
    return json.dumps(value) if isinstance(value, (str, int, float, bool)) or value is None else type(value).__name__


def expected(path, what, value):
    raise Invalid(path, f"expected {what}, got {_got(value)}")


class Context:
    """Per-file state of one validation pass: the warnings it found."""

    def __init__(self):
        self.warnings = []

    def warn(self, path, why):
        self.warnings.append((path, why))


# --- scalars: check(value, path, ctx) -> normalized value -------------------------

def go_number(v):
    """A YAML number as docker/cli writes it (Go's fmt.Sprint, %v): 2.0 -> "2", 1234567.0 -> "1.234567e+06"."""
    if not isinstance(v, float):
        return str(v)
    if v != v or v in (float("inf"), float("-inf")):
        return "NaN" if v != v else ("+Inf" if v > 0 else "-Inf")
    if v == 0:
        return "0"
    _, digits, exponent = Decimal(repr(abs(v))).normalize().as_tuple()  # the shortest digits that round-trip
    digits = "".join(map(str, digits))
    exp = len(digits) + exponent - 1  # the power of ten of the first digit
    sign = "-" if v < 0 else ""
    if exp < -4 or exp >= 6:  # %g with the shortest precision switches to an exponent here
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return sign + format(Decimal(digits).scaleb(exp - len(digits) + 1), "f")


def string(v, p, ctx=None):
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        expected(p, "a string", v)
    return go_number(v) if isinstance(v, float) else str(v)


def integer(v, p, ctx=None):
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and re.fullmatch(r"\s*-?\d+\s*", v):
        return int(v)
    expected(p, "an integer", v)


def non_negative(v, p, ctx=None):
    n = integer(v, p)
    if n < 0:
        expected(p, "a non-negative integer", v)
    return n


def port_number(v, p, ctx=None):
    n = integer(v, p)
    if not 0 <= n <= 65535:
        expected(p, "a port number (0-65535)", v)
    return n


def number(v, p, ctx=None):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            pass
    expected(p, "a number", v)


def ratio(v, p, ctx=None):
    n = number(v, p)
    if not 0 <= n <= 1:
        expected(p, "a number from 0 to 1", v)
    return n


def boolean(v, p, ctx=None):
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("true", "false", "yes", "no", "on", "off", "y", "n"):
        return v.strip().lower() in ("true", "yes", "on", "y")
    expected(p, "true or false", v)


# Go's time.ParseDuration: a sequence of decimal numbers with units, or "0".
DURATION_RE = re.compile(r"^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$|^[-+]?0$")


def duration(v, p, ctx=None):
    if isinstance(v, str) and DURATION_RE.match(v.strip()):
        return v.strip()
    expected(p, 'a duration like "10s" or "1m30s"', v)


# docker's RAMInBytes: a number with an optional b, k, m, g, t, p unit (and b / ib suffix).
BYTES_RE = re.compile(r"^\d+(\.\d+)?\s*([kmgtp]?(i?b)?|b)$", re.I)


def byte_size(v, p, ctx=None):
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return v
    if isinstance(v, str) and BYTES_RE.match(v.strip()):
        return v.strip()
    expected(p, 'a size like "512M" or "1G"', v)


def cpus(v, p, ctx=None):
    n = number(v, p)
    if n <= 0:
        expected(p, "a positive number of CPUs", v)
    try:
        nano_cpus(v)
    except UsageError:
        expected(p, "a number of CPUs with at most 9 decimals", v)
    return str(v).strip() if isinstance(v, str) else v


def one_of(*choices):
    def check(v, p, ctx=None):
        if v not in choices:
            expected(p, "one of " + ", ".join(choices), v)
        return v
    return check


def list_of(item):
    def check(v, p, ctx=None):
        if not isinstance(v, list):
            expected(p, "a list", v)
        return [item(x, f"{p}[{i}]", ctx) for i, x in enumerate(v)]
    return check


def dict_of(item, key_re=None, what="a name"):
    def check(v, p, ctx=None):
        if not isinstance(v, dict):
            expected(p, "a mapping", v)
        out = {}
        for k, x in v.items():
            k = str(k)
            if key_re and not k.startswith("x-") and not re.fullmatch(key_re, k):
                raise Invalid(f"{p}.{k}" if p else k, f"expected {what} of letters, digits, '.', '_' or '-'")
            out[k] = item(x, f"{p}.{k}" if p else k, ctx)
        return out
    return check


def string_or_list(v, p, ctx=None):
    """A string or a list of strings; always a list out (docker's StringList)."""
    if isinstance(v, str):
        return [v]
    return list_of(string)(v, p, ctx)


def shell_command(v, p, ctx=None):
    """command / entrypoint: a list, or a string split like a shell would (docker's ShellCommand)."""
    if isinstance(v, str):
        try:
            return shlex.split(v)
        except ValueError as exc:
            raise Invalid(p, f"expected a command line, got {_got(v)} ({exc})") from None
    return list_of(string)(v, p, ctx)


def scalar_string(v, p, ctx=None):
    """Mapping values: string, number or null, kept as docker formats them (null stays None)."""
    if v is None:
        return None
    if isinstance(v, bool):
        expected(p, 'a string, number or null (quote it: "true")', v)
    if isinstance(v, (str, int, float)):
        return go_number(v) if isinstance(v, float) else str(v)
    expected(p, "a string, number or null", v)


def mapping_or_list(sep="=", allow_none=True):
    """environment / labels / sysctls / driver options: a mapping, or a list of KEY=VALUE strings."""
    def check(v, p, ctx=None):
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                value = scalar_string(x, f"{p}.{k}")
                out[str(k)] = value if value is not None or allow_none else ""
            return out
        if isinstance(v, list):
            out = {}
            for i, item in enumerate(v):
                if not isinstance(item, str):
                    expected(f"{p}[{i}]", 'a string "KEY=VALUE"', item)
                key, found, value = item.partition(sep)
                out[key] = value if found else (None if allow_none else "")
            return out
        expected(p, "a mapping or a list of KEY=VALUE", v)
    return check


def obj(fields, required=(), extra_ok=False):
    """A mapping with known keys. Unknown keys are errors (x-* extensions aside), unless extra_ok:
    docker/cli's schema leaves a few sub-objects open, and ignores what they hold (a warning here)."""
    def check(v, p, ctx=None):
        if not isinstance(v, dict):
            expected(p, "a mapping", v)
        out = {}
        for k, x in v.items():
            sub = f"{p}.{k}" if p else str(k)
            if str(k).startswith("x-"):
                out[k] = x
                continue
            if k not in fields:
                if extra_ok:
                    if ctx is not None:
                        ctx.warn(sub, "docker stack deploy ignores it")
                    continue
                raise Invalid(sub, f"unknown key (allowed: {', '.join(sorted(fields))})")
            out[k] = fields[k](x, sub, ctx) if fields[k] is not None else x
        for k in required:
            if k not in out:
                raise Invalid(f"{p}.{k}" if p else k, "is required")
        return out
    return check


def nullable(check, empty=None):
    return lambda v, p, ctx=None: (dict(empty or {}) if v is None else check(v, p, ctx))


# --- pieces of a service ------------------------------------------------------------

RESTART_CONDITIONS = ("none", "on-failure", "any")
RESOURCE_LIMITS = obj({"cpus": cpus, "memory": byte_size, "pids": integer})
GENERIC_RESOURCES = list_of(obj({"discrete_resource_spec": obj({"kind": string, "value": number})}))
RESOURCE_RESERVATIONS = obj({"cpus": cpus, "memory": byte_size, "generic_resources": GENERIC_RESOURCES})
UPDATE_FIELDS = {"parallelism": non_negative, "delay": duration, "monitor": duration, "max_failure_ratio": ratio,
                 "order": one_of("start-first", "stop-first")}


def _mode(v, p, ctx=None):
    return one_of("replicated", "global", "replicated-job", "global-job")(string(v, p).lower(), p)


DEPLOY = obj({
    "mode": _mode,
    "replicas": non_negative,
    "endpoint_mode": lambda v, p, ctx=None: one_of("vip", "dnsrr")(string(v, p).lower(), p),
    "labels": mapping_or_list(allow_none=False),
    "resources": obj({"limits": RESOURCE_LIMITS, "reservations": RESOURCE_RESERVATIONS}),
    "restart_policy": obj({"condition": one_of(*RESTART_CONDITIONS), "delay": duration,
                           "max_attempts": non_negative, "window": duration}),
    "placement": obj({"constraints": list_of(string), "preferences": list_of(obj({"spread": string})),
                      "max_replicas_per_node": non_negative}),
    "update_config": obj({**UPDATE_FIELDS, "failure_action": one_of("continue", "rollback", "pause")}),
    "rollback_config": obj({**UPDATE_FIELDS, "failure_action": one_of("continue", "pause")}),
})


def healthcheck_test(v, p, ctx=None):
    if isinstance(v, str):
        return ["CMD-SHELL", v]
    test = list_of(string)(v, p)
    if test and test[0] not in ("NONE", "CMD", "CMD-SHELL"):
        expected(f"{p}[0]", 'one of "CMD", "CMD-SHELL", "NONE" (or the test as one string)', test[0])
    return test


HEALTHCHECK = obj({"test": healthcheck_test, "interval": duration, "timeout": duration, "retries": non_negative,
                   "start_period": duration, "start_interval": duration, "disable": boolean})

_PORT_RANGE = r"\d+(?:-\d+)?"
_SHORT_PORT = re.compile(rf"^(?:(?:(?P<ip>\[[0-9a-fA-F:.]+\]|[\d.]+|[0-9a-fA-F:]*:[0-9a-fA-F:]+):)?"
                         rf"(?P<published>{_PORT_RANGE})?:)?(?P<target>{_PORT_RANGE})(?:/(?P<proto>\w+))?$")


def _port_range(text, p, v):
    a, _, b = text.partition("-")
    lo, hi = int(a), int(b or a)
    if hi < lo or hi > 65535:
        expected(p, 'a port like "8080:80" or "80/udp"', v)
    return list(range(lo, hi + 1))


def short_port(v, p, ctx=None):
    """ "[ip:][published[-end]:]target[-end][/proto]" -> long-syntax entries, as docker/cli's loader expands them."""
    m = _SHORT_PORT.match(str(v).strip())
    if not m:
        expected(p, 'a port like "8080:80" or "80/udp"', v)
    proto = (m.group("proto") or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        expected(p, "a protocol of tcp, udp or sctp", v)
    targets = _port_range(m.group("target"), p, v)
    published = _port_range(m.group("published"), p, v) if m.group("published") else None
    ip = (m.group("ip") or "").strip("[]")
    if ip and ip not in ("0.0.0.0", "::") and ctx is not None:
        ctx.warn(p, f"the address {ip} is ignored: a Swarm service listens on every address")
    if published and len(targets) > 1 and len(published) != len(targets):
        expected(p, "port ranges of the same length", v)
    out = []
    for i, target in enumerate(targets):
        # A range of published ports for one target publishes each of them (as docker does).
        pubs = [published[i]] if published and len(targets) > 1 else (published or [0])
        for pub in pubs:
            out.append({"target": target, "published": pub, "protocol": proto, "mode": "ingress"})
    return out


def _published(v, p, ctx=None):
    if isinstance(v, str) and not v.strip():
        return 0
    return port_number(v, p)


LONG_PORT = obj({"target": port_number, "published": _published,
                 "protocol": lambda v, p, ctx=None: one_of("tcp", "udp", "sctp")(string(v, p).lower(), p),
                 "mode": one_of("host", "ingress")}, required=("target",))


def ports(v, p, ctx=None):
    if not isinstance(v, list):
        expected(p, "a list", v)
    out = []
    for i, item in enumerate(v):
        q = f"{p}[{i}]"
        if isinstance(item, dict):
            out.append(LONG_PORT(item, q, ctx))
        elif isinstance(item, (int, str)) and not isinstance(item, bool):
            out.extend(short_port(item, q, ctx))
        else:
            expected(q, 'a port like "8080:80" or a mapping with target', item)
    return out


def file_ref(v, p, ctx=None):
    if isinstance(v, str):
        return {"source": v}
    return obj({"source": string, "target": string, "uid": string, "gid": string, "mode": file_mode},
               required=("source",))(v, p, ctx)


def file_mode(v, p, ctx=None):
    n = integer(v, p) if not isinstance(v, str) or not v.strip().startswith("0") else _octal(v, p)
    if not 0 <= n <= 0o7777:
        expected(p, "a file mode like 0440", v)
    return n


def _octal(v, p):
    try:
        return int(v.strip(), 8)
    except ValueError:
        expected(p, "a file mode like 0440", v)


PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
LONG_VOLUME = obj({
    "type": one_of("volume", "bind", "tmpfs", "npipe", "cluster"), "source": string, "target": string,
    "read_only": boolean, "consistency": string,
    "bind": obj({"propagation": one_of(*PROPAGATIONS)}, extra_ok=True),
    "volume": obj({"nocopy": boolean}, extra_ok=True),
    "tmpfs": obj({"size": byte_size}, extra_ok=True),
}, required=("type",))


def _is_path(source):
    return source[0] in "./~" or source.startswith("\\\\") or bool(re.match(r"^[A-Za-z]:", source))


def short_volume(spec, p):
    """docker/cli's ParseVolume: [source:]target[:options], options ro, rw, nocopy, a bind propagation."""
    if len(spec) <= 2:
        return {"type": "volume", "target": spec}
    drive = re.match(r"^[A-Za-z]:", spec)
    parts = spec.split(":") if not drive else [spec[:2] + spec[2:].split(":")[0]] + spec[2:].split(":")[1:]
    if any(part == "" for part in parts) or len(parts) > 3:
        expected(p, 'a volume like "data:/path", "./dir:/path:ro" or "/path"', spec)
    if len(parts) == 1:
        return {"type": "volume", "target": parts[0]}
    vol = {"type": "bind" if _is_path(parts[0]) else "volume", "source": parts[0], "target": parts[1]}
    for option in (parts[2].split(",") if len(parts) == 3 else []):
        if option in ("ro", "rw"):
            vol["read_only"] = option == "ro"
        elif option == "nocopy":
            vol["volume"] = {"nocopy": True}
        elif option in PROPAGATIONS:
            vol["bind"] = {"propagation": option}
        # Other options (z, Z, cached, ...) are ignored, as docker/cli ignores them.
    return vol


def volume_mount(v, p, ctx=None):
    if isinstance(v, str):
        if not v:
            expected(p, 'a volume like "data:/path"', v)
        vol = short_volume(v, p)
    else:
        vol = LONG_VOLUME(v, p, ctx)
    kind = vol["type"]
    if not vol.get("target"):
        raise Invalid(f"{p}.target", "is required")
    if kind in ("bind", "npipe", "cluster") and not vol.get("source"):
        raise Invalid(f"{p}.source", f"is required for a {kind} mount")
    if kind == "tmpfs" and vol.get("source"):
        raise Invalid(f"{p}.source", "must be empty for a tmpfs mount")
    for opt in ("bind", "volume", "tmpfs"):
        if opt in vol and opt != kind and not (opt == "bind" and kind == "npipe"):
            raise Invalid(f"{p}.{opt}", f"does not apply to a {kind} mount")
    return vol


SERVICE_NETWORK = obj({"aliases": list_of(string), "ipv4_address": string, "ipv6_address": string,
                       "driver_opts": mapping_or_list(allow_none=False)})


def service_networks(v, p, ctx=None):
    if isinstance(v, list):
        return {n: None for n in list_of(string)(v, p)}
    nets = dict_of(lambda x, q, c=None: None if x is None else SERVICE_NETWORK(x, q, c))(v, p, ctx)
    for name, cfg in nets.items():
        for key in ("ipv4_address", "ipv6_address"):
            if cfg and key in cfg and ctx is not None:
                ctx.warn(f"{p}.{name}.{key}", "Swarm assigns addresses itself")
    return nets


def ulimits(v, p, ctx=None):
    def one(x, q, c=None):
        if isinstance(x, dict):
            return obj({"soft": integer, "hard": integer}, required=("soft", "hard"))(x, q)
        return integer(x, q)
    return dict_of(one, key_re=r"[a-z]+", what="a limit name")(v, p, ctx)


def extra_hosts(v, p, ctx=None):
    """docker/cli's HostsList: "host:ip" strings, from a mapping or "host=ip" / "host:ip" entries."""
    if isinstance(v, dict):
        pairs = [(str(k), string(x, f"{p}.{k}")) for k, x in sorted(v.items()) if x is not None]
    elif isinstance(v, list):
        pairs = []
        for i, item in enumerate(v):
            s = string(item, f"{p}[{i}]")
            sep = "=" if "=" in s else ":"
            host, found, ip = s.partition(sep)
            if not found:
                expected(f"{p}[{i}]", 'a "host:ip" entry', s)
            pairs.append((host, ip))
    else:
        expected(p, 'a mapping or a list of "host:ip"', v)
    out = []
    for host, ip in pairs:
        if len(ip) > 2 and ip[0] == "[" and ip[-1] == "]":
            ip = ip[1:-1]
        out.append(f"{host}:{ip}")
    return out


def restart(v, p, ctx=None):
    s = string(v, p)
    if not re.fullmatch(r"no|always|unless-stopped|on-failure(:\d+)?", s):
        expected(p, 'one of "no", "always", "unless-stopped", "on-failure[:N]"', v)
    return s


CREDENTIAL_SPEC = obj({"config": string, "file": string, "registry": string})

# An image reference as docker's distribution/reference reads it (domain[:port]/path[:tag][@digest]).
_IMAGE_RE = re.compile(
    r"^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])"
    r"(?::\d+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$")


def image(v, p, ctx=None):
    s = string(v, p)
    first = s.split("/", 1)[0]
    # The first component is a registry only with a '.', a ':port' or as localhost; else it is lowercase path.
    registry = "/" in s and ("." in first or ":" in first or first == "localhost")
    if not _IMAGE_RE.match(s) or (not registry and first != first.lower()):
        expected(p, 'an image reference like "registry:5000/name:tag"', v)
    return s


# Keys docker/cli's schema accepts and `docker stack deploy` then ignores: a warning, never a silent drop.
IGNORED_BY_SWARM = {
    "build": "build and push the image first, with swarmml build --push",
    "cgroupns_mode": "not supported by Swarm services",
    "cgroup_parent": "not supported by Swarm services", "devices": "not supported by Swarm services",
    "domainname": "not supported by Swarm services", "external_links": "use networks", "ipc": "not supported by Swarm "
    "services", "links": "use networks", "mac_address": "not supported by Swarm services",
    "network_mode": "use networks", "pid": "not supported by Swarm services",
    "privileged": "not supported by Swarm services", "security_opt": "not supported by Swarm services",
    "shm_size": "not supported by Swarm services", "userns_mode": "not supported by Swarm services",
    "container_name": "Swarm names containers itself",
    "expose": "services on one network reach each other on any port",
    "depends_on": "Swarm starts services in no particular order",
    "tmpfs": "use a volume of type tmpfs",
}
# Keys docker/cli refuses outright; the reasons are docker/cli's.
FORBIDDEN = {
    "extends": "`extends` is not supported by docker stack deploy",
    "volume_driver": "define a volume under the top-level `volumes:` with a driver, and use it",
    "volumes_from": "define the volume under the top-level `volumes:` and list it in each service",
    "cpu_quota": "set deploy.resources.limits.cpus", "cpu_shares": "set deploy.resources.reservations.cpus",
    "cpuset": "set deploy.resources", "mem_limit": "set deploy.resources.limits.memory",
    "memswap_limit": "set deploy.resources",
}

SERVICE_FIELDS = {
    "image": image, "command": shell_command, "entrypoint": shell_command,
    "environment": mapping_or_list(), "env_file": string_or_list, "labels": mapping_or_list(allow_none=False),
    "deploy": nullable(DEPLOY), "healthcheck": HEALTHCHECK, "networks": service_networks, "ports": ports,
    "secrets": list_of(file_ref), "configs": list_of(file_ref), "volumes": list_of(volume_mount),
    "user": string, "working_dir": string, "hostname": string, "stop_grace_period": duration,
    "stop_signal": string, "read_only": boolean, "init": boolean, "tty": boolean, "stdin_open": boolean,
    "cap_add": list_of(string), "cap_drop": list_of(string), "sysctls": mapping_or_list(allow_none=False),
    "ulimits": ulimits, "dns": string_or_list, "dns_search": string_or_list, "extra_hosts": extra_hosts,
    "logging": obj({"driver": string, "options": dict_of(scalar_string)}), "isolation": string,
    "credential_spec": CREDENTIAL_SPEC, "oom_score_adj": integer, "restart": restart,
    **{k: None for k in IGNORED_BY_SWARM},
}
_SERVICE = obj(SERVICE_FIELDS)


def service(v, p, ctx=None):
    if v is None:
        v = {}
    if isinstance(v, dict):
        for key in v:
            if key in FORBIDDEN:
                raise Invalid(f"{p}.{key}", f"not supported by docker stack deploy: {FORBIDDEN[key]}")
    svc = _SERVICE(v, p, ctx)
    for key in svc:
        if key in IGNORED_BY_SWARM and ctx is not None:
            ctx.warn(f"{p}.{key}", IGNORED_BY_SWARM[key])
    if "restart" in svc and "restart_policy" in (svc.get("deploy") or {}) and ctx is not None:
        ctx.warn(f"{p}.restart", "deploy.restart_policy is used instead")
    hc = svc.get("healthcheck") or {}
    if hc.get("disable") and hc.get("test"):
        raise Invalid(f"{p}.healthcheck", "test and disable can't be set at the same time")
    deploy = svc.get("deploy") or {}
    if deploy.get("mode") in ("global", "global-job") and "replicas" in deploy:
        raise Invalid(f"{p}.deploy.replicas", f"can only be used with replicated or replicated-job mode, "
                                              f"not {deploy['mode']}")
    return svc


EXTERNAL = lambda v, p, ctx=None: (  # noqa: E731
    boolean(v, p) if not isinstance(v, dict) else obj({"name": string})(v, p, ctx))
DRIVER_OPTS = dict_of(lambda v, p, ctx=None: string(v, p))
NETWORK = obj({"name": string, "driver": string, "driver_opts": DRIVER_OPTS, "attachable": boolean,
               "internal": boolean, "external": EXTERNAL, "labels": mapping_or_list(allow_none=False),
               "ipam": obj({"driver": string, "config": list_of(obj({"subnet": string}))})})
VOLUME = obj({"name": string, "driver": string, "driver_opts": DRIVER_OPTS, "external": EXTERNAL,
              "labels": mapping_or_list(allow_none=False), "x-cluster-spec": None})
SECRET = obj({"name": string, "file": string, "external": EXTERNAL, "labels": mapping_or_list(allow_none=False),
              "driver": string, "driver_opts": DRIVER_OPTS, "template_driver": string,
              "content": string, "environment": string})
CONFIG = obj({"name": string, "file": string, "external": EXTERNAL, "labels": mapping_or_list(allow_none=False),
              "template_driver": string, "content": string, "environment": string})

NAME_RE = r"[a-zA-Z0-9._-]+"


def version(v, p, ctx=None):
    s = string(v, p)
    if not re.fullmatch(r"3(\.\d+)?", s):
        expected(p, '"3.x" (docker stack deploy reads compose file format 3)', v)
    return s


TOP = obj({
    "version": version, "name": string,
    "services": dict_of(service, key_re=NAME_RE, what="a service name"),
    "networks": dict_of(nullable(NETWORK), key_re=NAME_RE, what="a network name"),
    "volumes": dict_of(nullable(VOLUME), key_re=NAME_RE, what="a volume name"),
    "secrets": dict_of(nullable(SECRET), key_re=NAME_RE, what="a secret name"),
    "configs": dict_of(nullable(CONFIG), key_re=NAME_RE, what="a config name"),
})


def _external_objects(doc, ctx):
    """As docker/cli's loader: `external` becomes a bool and the real name goes to `name`."""
    for kind in ("networks", "volumes", "secrets", "configs"):
        for key, o in (doc.get(kind) or {}).items():
            ext = o.get("external")
            if isinstance(ext, dict):
                if ext.get("name") and o.get("name"):
                    raise Invalid(f"{kind}.{key}.external.name", f"conflicts with {kind}.{key}.name; use name only")
                o["name"] = ext.get("name") or o.get("name") or key
                o["external"] = True
            elif ext:
                o["name"] = o.get("name") or key
            if o.get("external"):
                for other in sorted(set(o) - {"external", "name"}):
                    if other.startswith("x-"):
                        continue
                    if kind == "volumes":
                        raise Invalid(f"{kind}.{key}.{other}", "can't be set on an external volume")
                    ctx.warn(f"{kind}.{key}.{other}", "the object is external: it is used as it exists")
            elif kind in ("secrets", "configs"):
                sources = [s for s in ("file", "content", "environment", "driver") if s in o]
                if len(sources) != 1:
                    raise Invalid(f"{kind}.{key}", "expected exactly one of file, content, environment"
                                  + (", driver" if kind == "secrets" else "") + " or external: true"
                                  + (f" (got {', '.join(sources)})" if sources else ""))


# Keys that docker/cli's schemas gained after 3.0, with the file format version that has them: docker stack
# deploy validates a file against the version it declares, so these are errors below that version.
# "*" is any name, "[]" any list item (a mapping there: the long syntax).
SINCE_VERSION = [
    (("services", "*", "ports", "[]"), (3, 2), "the long port syntax"),
    (("services", "*", "volumes", "[]"), (3, 2), "the long volume syntax"),
    (("services", "*", "deploy", "endpoint_mode"), (3, 2), None),
    (("networks", "*", "attachable"), (3, 2), None),
    (("configs",), (3, 3), None), (("services", "*", "configs"), (3, 3), None),
    (("services", "*", "credential_spec"), (3, 3), None),
    (("services", "*", "deploy", "placement", "preferences"), (3, 3), None),
    (("services", "*", "deploy", "update_config", "order"), (3, 4), None),
    (("services", "*", "healthcheck", "start_period"), (3, 4), None),
    (("volumes", "*", "name"), (3, 4), None),
    (("services", "*", "isolation"), (3, 5), None),
    (("networks", "*", "name"), (3, 5), None), (("secrets", "*", "name"), (3, 5), None),
    (("configs", "*", "name"), (3, 5), None),
    (("services", "*", "volumes", "[]", "tmpfs"), (3, 6), None),
    (("services", "*", "deploy", "rollback_config"), (3, 7), None), (("services", "*", "init"), (3, 7), None),
    (("configs", "*", "template_driver"), (3, 8), None), (("secrets", "*", "template_driver"), (3, 8), None),
    (("secrets", "*", "driver"), (3, 8), None),
    (("services", "*", "deploy", "placement", "max_replicas_per_node"), (3, 8), None),
    (("services", "*", "credential_spec", "config"), (3, 8), None),
    (("services", "*", "deploy", "resources", "limits", "pids"), (3, 9), None),
    (("volumes", "*", "x-cluster-spec"), (3, 10), None),
    (("services", "*", "healthcheck", "start_interval"), (3, 12), None),
    (("services", "*", "networks", "*", "driver_opts"), (3, 13), None),
    (("services", "*", "oom_score_adj"), (3, 13), None),
]


def _find(node, pattern, path=""):
    """Key paths in a raw document that match pattern (long syntax only where the pattern ends in [])."""
    if not pattern:
        yield path
        return
    head, rest = pattern[0], pattern[1:]
    if head == "[]":
        for i, item in enumerate(node if isinstance(node, list) else []):
            if isinstance(item, dict) or rest:
                yield from _find(item, rest, f"{path}[{i}]")
    elif isinstance(node, dict):
        for k in (node if head == "*" else [head] if head in node else []):
            yield from _find(node[k], rest, f"{path}.{k}" if path else str(k))


def check_version(doc, filename):
    """docker/cli's rule: a key newer than the file's declared `version:` is an error (none declared: the newest)."""
    declared = str(doc.get("version", ""))
    if not re.fullmatch(r"3(\.\d+)?", declared):
        return
    have = tuple(int(x) for x in (declared + ".0").split(".")[:2])
    for pattern, since, what in SINCE_VERSION:
        if have < since:
            for path in _find(doc, pattern):
                need = f"{since[0]}.{since[1]}"
                raise UsageError(f"{filename}: {path}: {what or 'this key'} needs version \"{need}\" or later "
                                 f"(the file declares \"{declared}\", and docker stack deploy would reject it)")


def validate(doc, filename):
    """(normalized document, [warning lines]), or UsageError naming file, key path and expectation."""
    if not isinstance(doc, dict):
        raise UsageError(f"{filename}: expected a mapping at the top level, got {_got(doc)}")
    ctx = Context()
    try:
        out = TOP(doc, "", ctx)
        check_version(doc, filename)
        _external_objects(out, ctx)
    except Invalid as exc:
        raise UsageError(f"{filename}: {exc.path}: {exc.message}") from None
    warnings = [f"{filename}: {path}: ignored by Swarm ({why})" for path, why in ctx.warnings]
    return out, warnings
