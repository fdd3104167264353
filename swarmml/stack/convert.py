"""Compose config -> Swarm API specs, with the semantics of docker/cli's `stack deploy`.

The output is the Engine API's JSON as plain dicts: ServiceSpec (what
/services/create takes), network create options, SecretSpec and ConfigSpec.
It follows docker/cli's converter (cli/compose/convert): entrypoint becomes
ContainerSpec.Command and command becomes Args; environment is a sorted
KEY=VALUE list; services with no networks join `<stack>_default`; the short
service name is an alias on every user-defined network; update and rollback
parallelism default to 1; names are scoped `<stack>_<name>` unless `name:`
is given or the object is external; com.docker.stack.namespace labels
services, containers, networks, volumes, secrets and configs, and
com.docker.stack.image labels services; a config or secret mounted without a
target is mounted under its source name (`/run/secrets/<name>`, `/<name>`).

Deliberate differences from docker/cli, each an improvement:

- Content-hashed secrets and configs. Swarm never changes a secret's or
  config's data, so with docker/cli a changed file makes the deploy fail
  ("only updates to Labels are allowed"). Here an object whose data comes
  from a file, content or an environment variable is named
  `<stack>_<name>-<first 10 hex digits of sha256(data)>` and labelled
  io.swarmml.logical-name=<name> and io.swarmml.content-hash=<sha256>:
  changed data makes a new object, the services that mount it roll to it,
  and the old one is removed once unused. To compare with docker/cli's
  names, drop the last '-' and the 10 hex digits after it
  (`logical_name()` here does that). Objects named with `name:` keep their
  name (someone chose it) and carry the hash label only, so a changed
  content is reported by the plan instead of failing half-way.
- A secret's or config's data may come from `content:` or `environment:`
  (the compose specification's keys) as well as `file:`.
- Loading differs in a few chosen ways too: see swarmml.stack.loader.

Data of secrets and configs is base64 text (as the Engine API's JSON has it).
"""
import base64
import hashlib
import re
from dataclasses import dataclass, field

from swarmml import labels
from swarmml.errors import UsageError
from swarmml.stack.units import duration_ns, nano_cpus, size_bytes

NAMESPACE_LABEL, IMAGE_LABEL = labels.STACK_NAMESPACE, labels.STACK_IMAGE
LOGICAL_NAME_LABEL = "io.swarmml.logical-name"
CONTENT_HASH_LABEL = "io.swarmml.content-hash"
HASH_LEN = 10
_HASHED = re.compile(rf"^(.*)-[0-9a-f]{{{HASH_LEN}}}$")


@dataclass
class DesiredStack:
    namespace: str
    services: dict = field(default_factory=dict)  # full name -> ServiceSpec
    networks: dict = field(default_factory=dict)  # full name -> network create options
    external_networks: list = field(default_factory=list)
    secrets: dict = field(default_factory=dict)  # full name -> SecretSpec (Data: base64 str)
    configs: dict = field(default_factory=dict)  # full name -> ConfigSpec (Data: base64 str)
    external_secrets: list = field(default_factory=list)
    external_configs: list = field(default_factory=list)

    def to_dict(self):
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def scope(namespace, name):
    return f"{namespace}_{name}"


def logical_name(name):
    """A content-hashed secret or config name without its hash: the name docker/cli would have used."""
    m = _HASHED.match(name)
    return m.group(1) if m else name


def with_stack_label(namespace, labels):
    out = dict(labels or {})
    out[NAMESPACE_LABEL] = namespace
    return out


def convert(loaded):
    """LoadedStack -> DesiredStack. Reads the files that configs and secrets name."""
    ns, cfg = loaded.name, loaded.config
    desired = DesiredStack(ns)
    used = set()
    for svc in cfg["services"].values():
        used.update(svc.get("networks") or {"default": None})
    _networks(desired, ns, cfg.get("networks") or {}, used)
    secret_names = _file_objects(desired, ns, cfg.get("secrets") or {}, "secrets")
    config_names = _file_objects(desired, ns, cfg.get("configs") or {}, "configs")
    for name in sorted(cfg["services"]):
        spec = service_spec(ns, name, cfg["services"][name], cfg, secret_names, config_names)
        desired.services[spec["Name"]] = spec
    return desired


# --- networks, volumes, secrets, configs ------------------------------------------

def _networks(desired, ns, networks, used):
    for name in sorted(used):
        net = networks.get(name) or {}
        if net.get("external"):
            desired.external_networks.append(net["name"])
            continue
        spec = {
            "Name": net.get("name") or scope(ns, name),
            "Labels": with_stack_label(ns, net.get("labels")),
            # docker stack deploy creates overlay networks unless told otherwise.
            "Driver": net.get("driver") or "overlay",
            "Options": net.get("driver_opts") or {},
            "Internal": bool(net.get("internal", False)),
            "Attachable": bool(net.get("attachable", False)),
        }
        ipam = net.get("ipam") or {}
        if ipam.get("driver") or ipam.get("config"):
            spec["IPAM"] = {"Driver": ipam.get("driver", ""),
                            "Config": [{"Subnet": c.get("subnet", "")} for c in ipam.get("config") or []]}
        desired.networks[spec["Name"]] = spec


def _file_objects(desired, ns, objects, kind):
    """Specs for the stack's own secrets or configs; returns logical name -> (engine name, docker/cli's name)."""
    names = {}
    for name, obj in sorted(objects.items()):
        if obj.get("external"):
            getattr(desired, f"external_{kind}").append(obj["name"])
            names[name] = (obj["name"], obj["name"])
            continue
        plain = obj.get("name") or scope(ns, name)
        labels = with_stack_label(ns, obj.get("labels"))
        labels[LOGICAL_NAME_LABEL] = name
        if obj.get("driver"):
            # Data comes from a secret driver plugin: nothing to hash, nothing to read.
            spec = {"Name": plain, "Labels": labels, "Data": "",
                    "Driver": {"Name": obj["driver"], "Options": obj.get("driver_opts") or {}}}
        else:
            data = _read(obj, kind, name)
            digest = hashlib.sha256(data).hexdigest()
            labels[CONTENT_HASH_LABEL] = digest
            real = plain if obj.get("name") else f"{plain}-{digest[:HASH_LEN]}"
            spec = {"Name": real, "Labels": labels, "Data": base64.b64encode(data).decode()}
        if obj.get("template_driver"):
            spec["Templating"] = {"Name": obj["template_driver"]}
        getattr(desired, kind)[spec["Name"]] = spec
        names[name] = (spec["Name"], plain)
    return names


def _read(obj, kind, name):
    if "file" in obj:
        try:
            with open(obj["file"], "rb") as f:
                return f.read()
        except OSError as exc:
            raise UsageError(f"{kind}.{name}.file: can't read {obj['file']} ({exc.strerror})") from None
    return obj["content"].encode()


# --- services ----------------------------------------------------------------------

def service_spec(ns, name, svc, cfg, secret_names, config_names):
    deploy = svc.get("deploy") or {}
    where = f"services.{name}"
    container = {"Image": svc["image"], "Labels": with_stack_label(ns, svc.get("labels"))}
    _set(container, "Command", svc.get("entrypoint"))
    _set(container, "Args", svc.get("command"))
    _set(container, "Hostname", svc.get("hostname"))
    # "host:ip" -> "ip host", SwarmKit's notation, in the file's order.
    _set(container, "Hosts", [f"{ip} {host}" for host, _, ip in (h.partition(":") for h in svc.get("extra_hosts", []))])
    if "dns" in svc or "dns_search" in svc:
        container["DNSConfig"] = {k: v for k, v in (("Nameservers", svc.get("dns")), ("Search", svc.get("dns_search")))
                                  if v}
    _set(container, "Healthcheck", _healthcheck(svc.get("healthcheck")))
    _set(container, "Env", _environment(svc.get("environment")))
    _set(container, "Dir", svc.get("working_dir"))
    _set(container, "User", svc.get("user"))
    _set(container, "Mounts", _mounts(ns, svc.get("volumes") or [], cfg.get("volumes") or {}))
    if "stop_grace_period" in svc:
        container["StopGracePeriod"] = duration_ns(svc["stop_grace_period"])
    _set(container, "StopSignal", svc.get("stop_signal"))
    for key, compose_key in (("TTY", "tty"), ("OpenStdin", "stdin_open"), ("ReadOnly", "read_only")):
        if svc.get(compose_key):
            container[key] = True
    _set(container, "Secrets", _file_refs(svc.get("secrets"), secret_names, "Secret"))
    _set(container, "Configs", _file_refs(svc.get("configs"), config_names, "Config"))
    container["Privileges"] = {"CredentialSpec": _credential_spec(svc.get("credential_spec"), where),
                               "SELinuxContext": None}
    _set(container, "Isolation", svc.get("isolation"))
    if "init" in svc:
        container["Init"] = svc["init"]
    _set(container, "Sysctls", svc.get("sysctls"))
    cap_add, cap_drop = _capabilities(svc.get("cap_add") or [], svc.get("cap_drop") or [])
    _set(container, "CapabilityAdd", cap_add)
    _set(container, "CapabilityDrop", cap_drop)
    _set(container, "Ulimits", _ulimits(svc.get("ulimits")))
    if svc.get("oom_score_adj"):
        container["OomScoreAdj"] = svc["oom_score_adj"]

    placement = deploy.get("placement") or {}
    task = {"ContainerSpec": container, "Resources": _resources(deploy.get("resources") or {}), "Placement": {}}
    _set(task["Placement"], "Constraints", placement.get("constraints"))
    _set(task["Placement"], "Preferences", [{"Spread": {"SpreadDescriptor": p.get("spread", "")}}
                                            for p in placement.get("preferences") or []])
    _set(task["Placement"], "MaxReplicas", placement.get("max_replicas_per_node"))
    _set(task, "RestartPolicy", _restart_policy(deploy.get("restart_policy"), svc.get("restart")))
    if "logging" in svc:
        task["LogDriver"] = {"Name": svc["logging"].get("driver", ""), "Options": svc["logging"].get("options") or {}}
    task["Networks"] = _service_networks(ns, name, svc.get("networks"), cfg.get("networks") or {})

    labels = with_stack_label(ns, deploy.get("labels"))
    labels[IMAGE_LABEL] = svc["image"]
    spec = {
        "Name": scope(ns, name),
        "Labels": labels,
        "TaskTemplate": task,
        "Mode": _mode(deploy),
        "EndpointSpec": _endpoint(deploy.get("endpoint_mode"), svc.get("ports") or []),
    }
    _set(spec, "UpdateConfig", _update_config(deploy.get("update_config")))
    _set(spec, "RollbackConfig", _update_config(deploy.get("rollback_config")))
    return spec


def _set(d, key, value):
    if value not in (None, [], {}, ""):
        d[key] = value


def _environment(env):
    if not env:
        return None
    return sorted(k if v is None else f"{k}={v}" for k, v in env.items())


def _healthcheck(hc):
    if hc is None:
        return None
    if hc.get("disable"):
        return {"Test": ["NONE"]}
    out = {}
    _set(out, "Test", hc.get("test"))
    for key, compose_key in (("Interval", "interval"), ("Timeout", "timeout"), ("StartPeriod", "start_period"),
                             ("StartInterval", "start_interval")):
        if compose_key in hc:
            out[key] = duration_ns(hc[compose_key])
    if "retries" in hc:
        out["Retries"] = hc["retries"]
    return out


def _credential_spec(cred, where):
    if not cred:
        return None
    given = [k for k in ("config", "file", "registry") if cred.get(k)]
    if len(given) > 1:
        raise UsageError(f"{where}.credential_spec: set only one of {', '.join(given)}")
    if given == ["config"]:
        raise UsageError(f"{where}.credential_spec.config: not supported by swarmml (Windows gMSA); "
                         "use file or registry")
    return {given[0].capitalize(): cred[given[0]]} if given else None


def _capabilities(add, drop):
    """docker/cli's EffectiveCapAddCapDrop: normalized, deduplicated, sorted; adding wins over dropping."""
    def norm(c):
        c = c.strip().upper()
        return c if c in ("ALL", "RESET") or c.startswith("CAP_") else "CAP_" + c
    adds, drops = {norm(c) for c in add}, {norm(c) for c in drop}
    adds = {"ALL"} if "ALL" in adds else adds
    drops = {"ALL"} if "ALL" in drops else drops
    return sorted(adds - {"RESET"}), sorted(drops - adds - {"RESET"})


def _ulimits(ulimits):
    if not ulimits:
        return None
    out = []
    for name in sorted(ulimits):
        v = ulimits[name]
        soft, hard = (v, v) if isinstance(v, int) else (v["soft"], v["hard"])
        out.append({"Name": name, "Soft": soft, "Hard": hard})
    return out


def _file_refs(refs, names, kind):
    if not refs:
        return None
    out = []
    for ref in refs:
        real, plain = names[ref["source"]]
        # docker/cli: the target defaults to the source name (Swarm mounts a secret under /run/secrets/,
        # a config at the root); uid and gid "0"; mode 0444.
        entry = {"File": {"Name": ref.get("target") or ref["source"], "UID": ref.get("uid") or "0",
                          "GID": ref.get("gid") or "0", "Mode": ref.get("mode", 0o444)},
                 f"{kind}Name": real}
        out.append((plain, entry))
    # Sorted by the name docker/cli would use, so that both order references alike.
    return [entry for _, entry in sorted(out, key=lambda pair: pair[0])]


def _mounts(ns, volumes, stack_volumes):
    mounts = []
    for v in volumes:
        kind = v["type"]
        m = {"Type": kind, "Target": v["target"]}
        if v.get("read_only"):
            m["ReadOnly"] = True
        _set(m, "Consistency", v.get("consistency"))
        source = v.get("source")
        if kind == "volume" and source:
            vol = stack_volumes[source]
            m["Source"] = vol.get("name") or scope(ns, source)
            opts = {}
            if (v.get("volume") or {}).get("nocopy"):
                opts["NoCopy"] = True
            if not vol.get("external"):
                opts["Labels"] = with_stack_label(ns, vol.get("labels"))
                if vol.get("driver") or "driver_opts" in vol:
                    opts["DriverConfig"] = {"Name": vol.get("driver", ""), "Options": vol.get("driver_opts") or {}}
            m["VolumeOptions"] = opts
        elif kind in ("bind", "npipe"):
            m["Source"] = source
            if "bind" in v:
                m["BindOptions"] = {"Propagation": v["bind"].get("propagation", "")}
        elif kind == "tmpfs" and "tmpfs" in v:
            m["TmpfsOptions"] = {"SizeBytes": size_bytes(v["tmpfs"].get("size", 0))}
        elif kind == "cluster":
            vol = stack_volumes.get(source) or {}
            m["Source"] = source if source.startswith("group:") else (vol.get("name") or scope(ns, source))
            m["ClusterOptions"] = {}
        mounts.append(m)
    return mounts


def _resources(res):
    out = {}
    for key, compose_key in (("Limits", "limits"), ("Reservations", "reservations")):
        r = res.get(compose_key)
        if r is None:
            continue
        spec = {}
        if "cpus" in r:
            spec["NanoCPUs"] = nano_cpus(r["cpus"])
        if "memory" in r:
            spec["MemoryBytes"] = size_bytes(r["memory"])
        if key == "Limits" and r.get("pids"):
            spec["Pids"] = r["pids"]
        generic = [{"DiscreteResourceSpec": {"Kind": g["discrete_resource_spec"].get("kind", ""),
                                             "Value": int(g["discrete_resource_spec"].get("value", 0))}}
                   for g in r.get("generic_resources") or [] if g.get("discrete_resource_spec")]
        _set(spec, "GenericResources", generic)
        out[key] = spec
    return out


def _restart_policy(policy, restart):
    if policy is not None:
        out = {}
        _set(out, "Condition", policy.get("condition"))
        for key, compose_key in (("Delay", "delay"), ("Window", "window")):
            if compose_key in policy:
                out[key] = duration_ns(policy[compose_key])
        if "max_attempts" in policy:
            out["MaxAttempts"] = policy["max_attempts"]
        return out
    if not restart or restart == "no":
        return None
    if restart.startswith("on-failure"):
        _, _, count = restart.partition(":")
        return {"Condition": "on-failure", "MaxAttempts": int(count or 0)}
    return {"Condition": "any"}  # always, unless-stopped


def _mode(deploy):
    mode = deploy.get("mode", "replicated")
    replicas = deploy.get("replicas")
    if mode == "global":
        return {"Global": {}}
    if mode == "global-job":
        return {"GlobalJob": {}}
    if mode == "replicated-job":
        # The engine takes 1 for both when they are unset, as docker/cli leaves them.
        n = 1 if replicas is None else replicas
        return {"ReplicatedJob": {"MaxConcurrent": n, "TotalCompletions": n}}
    return {"Replicated": {"Replicas": 1 if replicas is None else replicas}}


def _endpoint(mode, ports):
    configs = []
    for p in ports:
        cfg = {"Protocol": p.get("protocol", "tcp"), "TargetPort": p["target"],
               "PublishMode": p.get("mode", "ingress")}
        if p.get("published"):
            cfg["PublishedPort"] = p["published"]
        configs.append(cfg)
    configs.sort(key=lambda c: c.get("PublishedPort", 0))
    out = {}
    _set(out, "Mode", mode)
    _set(out, "Ports", configs)
    return out


def _user_defined(network):
    return network not in ("default", "bridge", "host", "none") and not network.startswith("container:")


def _service_networks(ns, name, nets, networks):
    out = []
    for net, opts in (nets or {"default": None}).items():
        cfg = networks.get(net) or {}
        target = cfg.get("name") or scope(ns, net)
        entry = {"Target": target, "Aliases": list((opts or {}).get("aliases") or [])}
        # Only user-defined networks take aliases (not host, bridge, none).
        if _user_defined(target):
            entry["Aliases"].append(name)
        _set(entry, "DriverOpts", (opts or {}).get("driver_opts"))
        out.append(entry)
    return sorted(out, key=lambda e: e["Target"])


def _update_config(uc):
    if uc is None:
        return None
    out = {"Parallelism": uc.get("parallelism", 1)}
    for key, compose_key in (("Delay", "delay"), ("Monitor", "monitor")):
        if compose_key in uc:
            out[key] = duration_ns(uc[compose_key])
    _set(out, "FailureAction", uc.get("failure_action"))
    if "max_failure_ratio" in uc:
        out["MaxFailureRatio"] = uc["max_failure_ratio"]
    _set(out, "Order", uc.get("order"))
    return out
