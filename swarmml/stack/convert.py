"""Compose config -> Swarm API specs, with docker/cli's `stack deploy` semantics.

Output is the Engine API's JSON (ServiceSpec, NetworkCreate, SecretSpec,
ConfigSpec) as plain dicts. Where this follows docker/cli: entrypoint becomes
ContainerSpec.Command and command becomes Args; environment is sorted;
services with no networks join `<stack>_default`; the short service name is
an alias on every stack network; update parallelism defaults to 1; names are
scoped `<stack>_<name>`; com.docker.stack.namespace labels everything and
com.docker.stack.image labels services.

Deliberate difference: secrets and configs read from files or content get a
content hash in their name (`<stack>_<name>-<10 hex>`) and the label
io.swarmml.logical-name. Swarm forbids changing a secret's or config's data,
so docker/cli fails on changed content; with hashed names a change creates a
new object and rolls the services that use it.
"""
import base64
import hashlib
import os
import shlex
from dataclasses import dataclass, field

from swarmml.errors import UsageError
from swarmml.stack.units import duration_ns, nano_cpus, size_bytes

NAMESPACE_LABEL = "com.docker.stack.namespace"
IMAGE_LABEL = "com.docker.stack.image"
LOGICAL_NAME_LABEL = "io.swarmml.logical-name"


@dataclass
class DesiredStack:
    namespace: str
    services: dict = field(default_factory=dict)  # full name -> ServiceSpec
    networks: dict = field(default_factory=dict)  # full name -> NetworkCreate
    external_networks: list = field(default_factory=list)
    secrets: dict = field(default_factory=dict)  # full name -> SecretSpec (Data base64)
    configs: dict = field(default_factory=dict)  # full name -> ConfigSpec (Data base64)
    external_secrets: list = field(default_factory=list)
    external_configs: list = field(default_factory=list)

    def to_dict(self):
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def scope(namespace, name):
    return f"{namespace}_{name}"


def with_stack_label(namespace, labels):
    out = dict(labels or {})
    out[NAMESPACE_LABEL] = namespace
    return out


def convert(loaded):
    """LoadedStack -> DesiredStack."""
    ns, cfg = loaded.name, loaded.config
    desired = DesiredStack(ns)
    used_networks = set()
    for svc in (cfg.get("services") or {}).values():
        used_networks.update(svc.get("networks") or {"default": None})
    _networks(desired, ns, cfg.get("networks") or {}, used_networks)
    secret_names = _file_objects(desired, ns, cfg.get("secrets") or {}, "secrets", loaded)
    config_names = _file_objects(desired, ns, cfg.get("configs") or {}, "configs", loaded)
    for name, svc in cfg["services"].items():
        spec = service_spec(ns, name, svc, cfg, secret_names, config_names)
        desired.services[spec["Name"]] = spec
    return desired


# --- networks, secrets, configs ------------------------------------------------

def _networks(desired, ns, networks, used):
    for name in sorted(used):
        net = networks.get(name) or {}
        if net.get("external"):
            ext = net["external"]
            desired.external_networks.append(net.get("name") or (ext.get("name") if isinstance(ext, dict) else None)
                                             or name)
            continue
        spec = {
            "Name": net.get("name") or scope(ns, name),
            "Labels": with_stack_label(ns, net.get("labels")),
            "Driver": net.get("driver") or "overlay",
            "Options": net.get("driver_opts") or {},
            "Internal": bool(net.get("internal", False)),
            "Attachable": bool(net.get("attachable", False)),
            "CheckDuplicate": True,
        }
        if net.get("ipam"):
            ipam = net["ipam"]
            spec["IPAM"] = {"Driver": ipam.get("driver", "default"), "Options": ipam.get("options") or {},
                            "Config": [{"Subnet": c.get("subnet", ""), "IPRange": c.get("ip_range", ""),
                                        "Gateway": c.get("gateway", ""),
                                        "AuxiliaryAddresses": c.get("aux_addresses") or {}}
                                       for c in ipam.get("config") or []]}
        desired.networks[spec["Name"]] = spec


def _file_objects(desired, ns, objects, kind, loaded):
    """Create specs for file/content objects; return logical name -> engine name."""
    names = {}
    for name, obj in sorted(objects.items()):
        ext = obj.get("external")
        if ext:
            real = obj.get("name") or (ext.get("name") if isinstance(ext, dict) else None) or name
            getattr(desired, f"external_{kind}").append(real)
            names[name] = real
            continue
        if obj.get("file"):
            with open(obj["file"], "rb") as f:
                data = f.read()
        elif "content" in obj:
            data = obj["content"].encode()
        else:
            env_name = obj["environment"]
            if env_name not in os.environ:
                raise UsageError(f"{loaded.files[0]}: {kind}.{name}.environment: variable {env_name} is not set")
            data = os.environ[env_name].encode()
        if obj.get("name"):
            real = obj["name"]
        else:
            real = f"{scope(ns, name)}-{hashlib.sha256(data).hexdigest()[:10]}"
        labels = with_stack_label(ns, obj.get("labels"))
        labels[LOGICAL_NAME_LABEL] = name
        spec = {"Name": real, "Labels": labels, "Data": base64.b64encode(data).decode()}
        if obj.get("template_driver"):
            spec["Templating"] = {"Name": obj["template_driver"]}
        getattr(desired, kind)[real] = spec
        names[name] = real
    return names


# --- services --------------------------------------------------------------------

def service_spec(ns, name, svc, cfg, secret_names, config_names):
    deploy = svc.get("deploy") or {}
    container = {
        "Image": svc["image"],
        "Labels": with_stack_label(ns, svc.get("labels")),
        "Privileges": {"CredentialSpec": None, "SELinuxContext": None},
    }
    _set(container, "Command", _words(svc.get("entrypoint")))
    _set(container, "Args", _words(svc.get("command")))
    _set(container, "Hostname", svc.get("hostname"))
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
    if "init" in svc:
        container["Init"] = svc["init"]
    _set(container, "Healthcheck", _healthcheck(svc.get("healthcheck")))
    _set(container, "Hosts", _hosts(svc.get("extra_hosts")))
    _set(container, "DNSConfig", _dns(svc))
    _set(container, "Secrets", _file_refs(svc.get("secrets"), secret_names, "secrets", name))
    _set(container, "Configs", _file_refs(svc.get("configs"), config_names, "configs", name))
    _set(container, "Isolation", svc.get("isolation"))
    _set(container, "Sysctls", svc.get("sysctls"))
    _set(container, "CapabilityAdd", _caps(svc.get("cap_add")))
    _set(container, "CapabilityDrop", _caps(svc.get("cap_drop")))
    _set(container, "Ulimits", _ulimits(svc.get("ulimits")))

    placement = deploy.get("placement") or {}
    task = {
        "ContainerSpec": container,
        "Resources": _resources(deploy.get("resources") or {}),
        "Placement": {},
        "Networks": _service_networks(ns, name, svc.get("networks"), cfg.get("networks") or {}),
    }
    _set(task["Placement"], "Constraints", placement.get("constraints"))
    _set(task["Placement"], "Preferences", [{"Spread": {"SpreadDescriptor": p["spread"]}}
                                            for p in placement.get("preferences") or []])
    if placement.get("max_replicas_per_node"):
        task["Placement"]["MaxReplicas"] = placement["max_replicas_per_node"]
    restart = _restart_policy(deploy.get("restart_policy"), svc.get("restart"))
    _set(task, "RestartPolicy", restart)
    if svc.get("logging"):
        task["LogDriver"] = {"Name": svc["logging"].get("driver", ""), "Options": svc["logging"].get("options") or {}}

    labels = with_stack_label(ns, deploy.get("labels"))
    labels[IMAGE_LABEL] = svc["image"]
    spec = {
        "Name": scope(ns, name),
        "Labels": labels,
        "TaskTemplate": task,
        "Mode": _mode(deploy, name),
        "EndpointSpec": _endpoint(deploy.get("endpoint_mode"), svc.get("ports") or [], name),
    }
    _set(spec, "UpdateConfig", _update_config(deploy.get("update_config")))
    _set(spec, "RollbackConfig", _update_config(deploy.get("rollback_config")))
    return spec


def _set(d, key, value):
    if value not in (None, [], {}, ""):
        d[key] = value


def _words(value):
    if value is None:
        return None
    return shlex.split(value) if isinstance(value, str) else list(value)


def _environment(env):
    if not env:
        return None
    return sorted(k if v is None else f"{k}={v}" for k, v in env.items())


def _healthcheck(hc):
    if not hc:
        return None
    if hc.get("disable"):
        return {"Test": ["NONE"]}
    out = {}
    test = hc.get("test")
    if test is not None:
        out["Test"] = ["CMD-SHELL", test] if isinstance(test, str) else list(test)
    for key, compose_key in (("Interval", "interval"), ("Timeout", "timeout"), ("StartPeriod", "start_period")):
        if compose_key in hc:
            out[key] = duration_ns(hc[compose_key])
    if "retries" in hc:
        out["Retries"] = hc["retries"]
    return out


def _hosts(extra):
    if not extra:
        return None
    pairs = extra.items() if isinstance(extra, dict) else (h.split(":", 1) if ":" in h else h.split("=", 1)
                                                          for h in extra)
    return [f"{ip} {host}" for host, ip in pairs]


def _dns(svc):
    dns, search = svc.get("dns"), svc.get("dns_search")
    if dns is None and search is None:
        return None
    listify = lambda v: [v] if isinstance(v, str) else (v or [])  # noqa: E731
    out = {}
    _set(out, "Nameservers", listify(dns))
    _set(out, "Search", listify(search))
    _set(out, "Options", svc.get("dns_opt"))
    return out


def _caps(caps):
    if not caps:
        return None
    return [c.upper() if c.upper() == "ALL" or c.upper().startswith("CAP_") else "CAP_" + c.upper() for c in caps]


def _ulimits(ulimits):
    if not ulimits:
        return None
    out = []
    for name in sorted(ulimits):
        v = ulimits[name]
        soft, hard = (v, v) if isinstance(v, int) else (v["soft"], v["hard"])
        out.append({"Name": name, "Soft": soft, "Hard": hard})
    return out


def _file_refs(refs, names, kind, service):
    if not refs:
        return None
    out = []
    for ref in refs:
        ref = {"source": ref} if isinstance(ref, str) else ref
        source = ref["source"]
        if kind == "secrets":
            target = ref.get("target") or source
        else:
            target = ref.get("target") or f"/{source}"
        entry = {"File": {"Name": target, "UID": ref.get("uid", "0"), "GID": ref.get("gid", "0"),
                          "Mode": ref.get("mode", 0o444)}}
        key = "SecretName" if kind == "secrets" else "ConfigName"
        entry[key] = names[source]
        out.append(entry)
    return out


def _mounts(ns, volumes, stack_volumes):
    mounts = []
    for v in volumes:
        if isinstance(v, str):
            parts = v.split(":")
            if len(parts) == 1:
                mounts.append({"Type": "volume", "Target": parts[0]})
                continue
            source, target = parts[0], parts[1]
            mode = parts[2] if len(parts) > 2 else ""
            vtype = "bind" if source.startswith(("/", ".", "~")) else "volume"
            v = {"type": vtype, "source": source, "target": target, "read_only": "ro" in mode.split(",")}
        m = {"Type": v["type"], "Target": v["target"]}
        if v.get("read_only"):
            m["ReadOnly"] = True
        source = v.get("source")
        if v["type"] == "volume" and source:
            vol = stack_volumes.get(source) or {}
            if vol.get("external"):
                ext = vol["external"]
                m["Source"] = vol.get("name") or (ext.get("name") if isinstance(ext, dict) else None) or source
            else:
                m["Source"] = vol.get("name") or scope(ns, source)
                opts = {"Labels": with_stack_label(ns, vol.get("labels"))}
                if (v.get("volume") or {}).get("nocopy"):
                    opts["NoCopy"] = True
                if vol.get("driver") or vol.get("driver_opts"):
                    opts["DriverConfig"] = {"Name": vol.get("driver", ""), "Options": vol.get("driver_opts") or {}}
                m["VolumeOptions"] = opts
        elif v["type"] == "bind":
            m["Source"] = source
            if (v.get("bind") or {}).get("propagation"):
                m["BindOptions"] = {"Propagation": v["bind"]["propagation"]}
        elif v["type"] == "tmpfs":
            t = v.get("tmpfs") or {}
            opts = {}
            if "size" in t:
                opts["SizeBytes"] = size_bytes(t["size"])
            if "mode" in t:
                opts["Mode"] = t["mode"]
            if opts:
                m["TmpfsOptions"] = opts
        mounts.append(m)
    return mounts


def _resources(res):
    out = {}
    for key, compose_key in (("Limits", "limits"), ("Reservations", "reservations")):
        r = res.get(compose_key) or {}
        spec = {}
        if "cpus" in r:
            spec["NanoCPUs"] = nano_cpus(r["cpus"])
        if "memory" in r:
            spec["MemoryBytes"] = size_bytes(r["memory"])
        if key == "Limits" and "pids" in r:
            spec["Pids"] = r["pids"]
        if spec:
            out[key] = spec
    return out


def _restart_policy(policy, restart):
    if policy:
        out = {}
        _set(out, "Condition", policy.get("condition"))
        if "delay" in policy:
            out["Delay"] = duration_ns(policy["delay"])
        if "max_attempts" in policy:
            out["MaxAttempts"] = policy["max_attempts"]
        if "window" in policy:
            out["Window"] = duration_ns(policy["window"])
        return out
    if restart:
        return {"Condition": {"no": "none", "always": "any", "unless-stopped": "any",
                              "on-failure": "on-failure"}[restart]}
    return None


def _mode(deploy, name):
    mode = deploy.get("mode", "replicated")
    replicas = deploy.get("replicas")
    if mode == "global":
        if replicas is not None:
            raise UsageError(f"services.{name}.deploy.replicas: can only be used with replicated or replicated-job mode")
        return {"Global": {}}
    if mode == "global-job":
        return {"GlobalJob": {}}
    if mode == "replicated-job":
        n = 1 if replicas is None else replicas
        return {"ReplicatedJob": {"MaxConcurrent": n, "TotalCompletions": n}}
    return {"Replicated": {"Replicas": 1 if replicas is None else replicas}}


def _endpoint(mode, ports, name):
    configs = []
    for p in ports:
        if isinstance(p, str):
            configs.extend(_short_ports(p, name))
        else:
            published = p.get("published")
            cfg = {"Protocol": p.get("protocol", "tcp"), "TargetPort": p["target"],
                   "PublishMode": p.get("mode", "ingress")}
            if published not in (None, ""):
                cfg["PublishedPort"] = int(published)
            configs.append(cfg)
    configs.sort(key=lambda c: c.get("PublishedPort", 0))
    out = {}
    if mode:
        out["Mode"] = mode
    if configs:
        out["Ports"] = configs
    return out


def _short_ports(text, name):
    proto = "tcp"
    if "/" in text:
        text, proto = text.split("/", 1)
    parts = text.split(":")
    target = parts[-1]
    published = parts[-2] if len(parts) >= 2 else None

    def expand(r):
        if r is None:
            return None
        a, _, b = r.partition("-")
        return list(range(int(a), int(b or a) + 1))

    targets, publishes = expand(target), expand(published)
    if publishes and len(publishes) != len(targets):
        raise UsageError(f"services.{name}.ports: port ranges {text!r} differ in length")
    out = []
    for i, t in enumerate(targets):
        cfg = {"Protocol": proto, "TargetPort": t, "PublishMode": "ingress"}
        if publishes:
            cfg["PublishedPort"] = publishes[i]
        out.append(cfg)
    return out


def _service_networks(ns, name, nets, networks):
    nets = nets or {"default": None}
    out = []
    for net, opts in nets.items():
        cfg = networks.get(net) or {}
        target = cfg.get("name") or scope(ns, net)
        if cfg.get("external"):
            ext = cfg["external"]
            target = cfg.get("name") or (ext.get("name") if isinstance(ext, dict) else None) or net
        aliases = list((opts or {}).get("aliases") or [])
        # Only user-defined networks take aliases (not host, bridge, none).
        if target not in ("host", "bridge", "none"):
            aliases.append(name)
        entry = {"Target": target, "Aliases": aliases}
        if (opts or {}).get("driver_opts"):
            entry["DriverOpts"] = opts["driver_opts"]
        out.append(entry)
    return sorted(out, key=lambda e: e["Target"])


def _update_config(uc):
    if uc is None:
        return None
    out = {"Parallelism": uc.get("parallelism", 1)}
    if "delay" in uc:
        out["Delay"] = duration_ns(uc["delay"])
    _set(out, "FailureAction", uc.get("failure_action"))
    if "monitor" in uc:
        out["Monitor"] = duration_ns(uc["monitor"])
    if "max_failure_ratio" in uc:
        out["MaxFailureRatio"] = uc["max_failure_ratio"]
    _set(out, "Order", uc.get("order"))
    return out
