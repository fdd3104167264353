"""Describe a stack in Python and write it as a compose (v3.8) stack file.

    stack = Stack("ml")
    net = stack.network("inference", attachable=True)
    stack.service("predictor", image="registry:5000/swarmml/predictor:latest", replicas=4, cpus=0.5,
                  memory="512M", networks=[net], endpoint_mode="dnsrr", ports=[Port(8080, 8080, mode="host")],
                  update=UpdateConfig(order="start-first", failure_action="rollback"))
    open("stack.yml", "w").write(stack.to_yaml())

Port(target, published): the container's port first, as in the long syntax.
The stack name goes to `x-swarmml: {stack: NAME}`, which docker/cli accepts
(it rejects the compose specification's top-level `name:`). The output is
accepted by `docker stack config` and by `swarmml deploy`.
"""
from dataclasses import dataclass, field

import yaml


@dataclass
class Port:
    target: int
    published: int | str | None = None  # a string may hold "${VAR:-default}"
    mode: str = "ingress"  # or "host": answers on the node that runs the task (no IPVS needed)
    protocol: str = "tcp"

    def to_dict(self):
        d = {"target": self.target, "protocol": self.protocol, "mode": self.mode}
        if self.published is not None:
            d["published"] = self.published
        return d


@dataclass
class Healthcheck:
    test: list  # ["CMD", ...], or a string run by the shell
    interval: str = "2s"
    timeout: str = "2s"
    retries: int = 3
    start_period: str = "15s"

    def to_dict(self):
        if self.test == "disable":
            return {"disable": True}
        test = self.test if isinstance(self.test, str) else list(self.test)
        return {"test": test, "interval": self.interval, "timeout": self.timeout,
                "retries": self.retries, "start_period": self.start_period}


# For a service whose image's HEALTHCHECK is not about it (the vip service runs the gateway's image).
NO_HEALTHCHECK = Healthcheck("disable")


@dataclass
class UpdatePolicy:
    parallelism: int = 1
    delay: str | None = None
    order: str | None = None  # start-first | stop-first
    failure_action: str | None = None  # rollback | pause | continue
    monitor: str | None = None
    max_failure_ratio: float | None = None

    def to_dict(self):
        return {k: v for k, v in self.__dict__.items() if v is not None}


UpdateConfig = UpdatePolicy
RollbackConfig = UpdatePolicy


@dataclass
class RestartPolicy:
    condition: str = "any"
    delay: str | None = None
    max_attempts: int | None = None
    window: str | None = None

    def to_dict(self):
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Service:
    name: str
    image: str
    replicas: int | str | None = 1  # a string may hold "${VAR:-default}"
    mode: str = "replicated"  # replicated | global | replicated-job | global-job
    command: list | None = None
    entrypoint: list | None = None
    environment: dict = field(default_factory=dict)
    ports: list = field(default_factory=list)
    networks: list = field(default_factory=list)
    configs: list = field(default_factory=list)  # names, (source, target) pairs or long-syntax dicts
    secrets: list = field(default_factory=list)  # names, (source, target) pairs or long-syntax dicts
    volumes: list = field(default_factory=list)  # "name:/path" or mount dicts
    cpus: float | None = None
    memory: str | None = None
    cpus_reserved: float | None = None
    memory_reserved: str | None = None
    constraints: list = field(default_factory=list)
    spread: list = field(default_factory=list)  # placement preferences, e.g. ["node.id"]
    max_replicas_per_node: int | None = None
    endpoint_mode: str | None = None  # vip | dnsrr
    healthcheck: Healthcheck | None = None
    update: UpdatePolicy | None = None
    rollback: UpdatePolicy | None = None
    restart: RestartPolicy | None = None
    stop_grace_period: str | None = None
    read_only: bool = False
    labels: dict = field(default_factory=dict)  # on the containers
    deploy_labels: dict = field(default_factory=dict)  # on the service
    user: str | None = None
    working_dir: str | None = None
    hostname: str | None = None
    init: bool | None = None
    cap_add: list = field(default_factory=list)
    cap_drop: list = field(default_factory=list)
    extra_hosts: list = field(default_factory=list)  # "host:ip"
    logging: dict | None = None  # {"driver": ..., "options": {...}}

    def to_dict(self):
        d = {"image": self.image}
        for key in ("command", "entrypoint"):
            if getattr(self, key) is not None:
                d[key] = list(getattr(self, key))
        if self.environment:
            d["environment"] = {k: str(v) for k, v in self.environment.items()}
        if self.read_only:
            d["read_only"] = True
        for key in ("user", "working_dir", "hostname", "init", "logging"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        for key in ("cap_add", "cap_drop", "extra_hosts"):
            if getattr(self, key):
                d[key] = list(getattr(self, key))
        if self.stop_grace_period:
            d["stop_grace_period"] = self.stop_grace_period
        if self.healthcheck:
            d["healthcheck"] = self.healthcheck.to_dict()
        if self.labels:
            d["labels"] = dict(self.labels)
        if self.volumes:
            d["volumes"] = list(self.volumes)
        for key in ("configs", "secrets"):
            refs = getattr(self, key)
            if refs:
                d[key] = [_ref(r) for r in refs]
        if self.ports:
            d["ports"] = [p.to_dict() for p in self.ports]
        if self.networks:
            d["networks"] = [n if isinstance(n, str) else n.name for n in self.networks]
        d["deploy"] = self._deploy()
        return d

    def _deploy(self):
        dep = {"mode": self.mode}
        if self.mode in ("replicated", "replicated-job") and self.replicas is not None:
            dep["replicas"] = self.replicas
        if self.endpoint_mode:
            dep["endpoint_mode"] = self.endpoint_mode
        if self.deploy_labels:
            dep["labels"] = {k: str(v) for k, v in self.deploy_labels.items()}
        limits, reservations = {}, {}
        if self.cpus is not None:
            limits["cpus"] = str(self.cpus)
        if self.memory:
            limits["memory"] = self.memory
        if self.cpus_reserved is not None:
            reservations["cpus"] = str(self.cpus_reserved)
        if self.memory_reserved:
            reservations["memory"] = self.memory_reserved
        if limits or reservations:
            dep["resources"] = {k: v for k, v in (("limits", limits), ("reservations", reservations)) if v}
        placement = {}
        if self.constraints:
            placement["constraints"] = list(self.constraints)
        if self.spread:
            placement["preferences"] = [{"spread": s} for s in self.spread]
        if self.max_replicas_per_node:
            placement["max_replicas_per_node"] = self.max_replicas_per_node
        if placement:
            dep["placement"] = placement
        if self.restart:
            dep["restart_policy"] = self.restart.to_dict()
        if self.update:
            dep["update_config"] = self.update.to_dict()
        if self.rollback:
            dep["rollback_config"] = self.rollback.to_dict()
        return dep


def _ref(ref):
    if isinstance(ref, str):
        return ref
    if isinstance(ref, dict):
        return dict(ref)
    source, target = ref
    return {"source": source, "target": target} if target else source


@dataclass
class Network:
    name: str
    driver: str = "overlay"
    attachable: bool = False
    internal: bool = False
    external: bool = False
    labels: dict = field(default_factory=dict)
    driver_opts: dict = field(default_factory=dict)
    external_name: str | None = None  # the existing network an external one stands for, e.g. host

    def to_dict(self):
        if self.external:
            return {"external": True, "name": self.external_name} if self.external_name else {"external": True}
        d = {"driver": self.driver}
        if self.attachable:
            d["attachable"] = True
        if self.internal:
            d["internal"] = True
        if self.labels:
            d["labels"] = {k: str(v) for k, v in self.labels.items()}
        if self.driver_opts:
            d["driver_opts"] = {k: str(v) for k, v in self.driver_opts.items()}
        return d


def _object(external, **fields):
    if external:
        return {"external": True}
    out = {k: v for k, v in fields.items() if v}
    if "labels" in out:
        out["labels"] = {k: str(v) for k, v in out["labels"].items()}
    return out


class Stack:
    def __init__(self, name):
        self.name = name
        self.services, self.networks, self.volumes, self.configs, self.secrets = {}, {}, {}, {}, {}

    def service(self, name, image, **kwargs):
        svc = Service(name, image, **kwargs)
        self.services[name] = svc
        return svc

    def network(self, name, **kwargs):
        net = Network(name, **kwargs)
        self.networks[name] = net
        return net

    def volume(self, name, driver=None, labels=None, external=False):
        self.volumes[name] = _object(external, driver=driver, labels=labels)
        return name

    def config(self, name, file=None, external=False, labels=None):
        """A config from a file (relative to the stack file), or one that already exists (external)."""
        self.configs[name] = _object(external, file=file, labels=labels)
        return name

    def secret(self, name, file=None, external=False, labels=None):
        self.secrets[name] = _object(external, file=file, labels=labels)
        return name

    def to_dict(self):
        d = {"version": "3.8", "x-swarmml": {"stack": self.name},
             "services": {n: s.to_dict() for n, s in self.services.items()}}
        for key in ("networks", "volumes", "configs", "secrets"):
            objs = getattr(self, key)
            if objs:
                d[key] = {n: (o.to_dict() if hasattr(o, "to_dict") else o) for n, o in objs.items()}
        return d

    def to_yaml(self, header=None):
        """The compose file; header: comment text put on top (one `# ` line per line)."""
        body = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False, width=120)
        if not header:
            return body
        return "".join(f"# {line}".rstrip() + "\n" for line in header.strip().splitlines()) + body


# The probe runs inside the replica's CPU limit every 2 s: python -S and a raw socket cost ~25 ms of CPU
# where urllib cost ~70 (measured in a replica), about a tenth of a 0.25-CPU replica's budget. It connects
# to the serving port first (the kernel accepts, no wait behind the queue): a replica that serves elsewhere
# is not healthy, whatever its health port says.
# Its timeouts are lenient on purpose: see docker-stack.yml.
READY_PROBE = ["CMD", "python", "-S", "-c",
               "import socket,sys; socket.create_connection(('127.0.0.1',8080),1.5).close(); "
               "s=socket.create_connection(('127.0.0.1',8081),1.5); "
               "s.sendall(b'GET /v2/health/ready HTTP/1.0\\r\\n\\r\\n'); sys.exit(s.recv(12)[9:12]!=b'200')"]


# Images as the project's docker-stack.yml names them: the registry and tag can be changed at deploy time.
DEFAULT_REGISTRY = "${SWARMML_REGISTRY:-registry:5000}"
DEFAULT_TAG = "${SWARMML_TAG:-latest}"
DEFAULT_MODELS = ("iris-logreg", "iris-rf")


INFERENCE_LOG_DIR = "/var/log/swarmml"


def add_predictor(stack, name, image, networks, replicas=2, cpus=0.5, memory="512M", models=DEFAULT_MODELS,
                  inference_log=False, **extra):
    """A predictor service as the project runs it: dnsrr (found by the gateway as tasks.<name>),
    read-only, health-checked, spread over nodes, rolling start-first with automatic rollback.

    inference_log: each replica appends a JSON line per request to its own file on the node's
    inference_log volume."""
    environment = {"SWARMML_MODELS": ",".join(models), "SWARMML_MAX_BATCH_SIZE": "64"}
    if inference_log:
        environment.update(
            SWARMML_INFERENCE_LOG=f"${{SWARMML_INFERENCE_LOG:-{INFERENCE_LOG_DIR}/inference.jsonl}}",
            SWARMML_INFERENCE_LOG_SAMPLE="${SWARMML_INFERENCE_LOG_SAMPLE:-0}")
        extra.setdefault("volumes", [f"{stack.volume('inference_log')}:{INFERENCE_LOG_DIR}"])
    return stack.service(
        name, image, replicas=replicas, cpus=cpus, memory=memory,
        memory_reserved="128M", networks=list(networks), endpoint_mode="dnsrr", read_only=True,
        stop_grace_period="30s", environment=environment,
        healthcheck=Healthcheck(READY_PROBE, timeout="5s", retries=5, start_period="60s"), spread=["node.id"],
        # any: a replica stopped for a failed health check exits 0, which on-failure never replaces.
        restart=RestartPolicy("any", delay="2s", max_attempts=5, window="30s"),
        update=UpdatePolicy(1, delay="1s", order="start-first", failure_action="rollback", monitor="10s",
                            max_failure_ratio=0),
        rollback=UpdatePolicy(1, delay="1s", order="start-first", failure_action="pause", monitor="5s"),
        **extra,
    )


def add_gateway(stack, image, networks, config_file, port=8080, config_name="haproxy_cfg"):
    """The HAProxy gateway on every node: its config as a Swarm config, one port published in host mode."""
    stack.config(config_name, config_file)
    return stack.service(
        "gateway", image, mode="global", replicas=None, cpus=0.5, memory="128M", networks=list(networks),
        configs=[(config_name, "/usr/local/etc/haproxy/haproxy.cfg")],
        ports=[Port(8080, port, mode="host")], restart=RestartPolicy("any", delay="1s"),
        update=UpdatePolicy(1, order="stop-first", failure_action="rollback"),
    )


# The server's arguments, the same for Debian's package (swarmml/data/prometheus) and prom/prometheus:
# both images start the binary as their entrypoint and keep a data directory /prometheus owned by the
# user they run as, so a new volume mounted there starts writable.
PROMETHEUS_COMMAND = ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
                      "--storage.tsdb.retention.time=15d", "--web.listen-address=:9090", "--web.enable-lifecycle"]


def add_prometheus(stack, image, networks, config_dir="stacks/prometheus", port="${PROMETHEUS_PORT:-9090}"):
    """Prometheus: finds its targets through Docker's DNS, keeps its data on a volume of the node it runs
    on (hence one manager, or PROMETHEUS_PLACEMENT), and publishes its UI in host mode. The image is
    Debian's package as built by swarmml, or prom/prometheus where a registry can be pulled from.
    stop-first: two servers on one data directory fight over its lock."""
    stack.config("prometheus_yml", f"{config_dir}/prometheus.yml")
    stack.config("prometheus_rules", f"{config_dir}/rules.yml")
    return stack.service(
        "prometheus", image, replicas=1, cpus=0.25, memory="256M",
        networks=list(networks), command=list(PROMETHEUS_COMMAND),
        configs=[("prometheus_yml", "/etc/prometheus/prometheus.yml"),
                 ("prometheus_rules", "/etc/prometheus/rules.yml")],
        volumes=[f"{stack.volume('prometheus_data')}:/prometheus"], ports=[Port(9090, port, mode="host")],
        constraints=["${PROMETHEUS_PLACEMENT:-node.role == manager}"], restart=RestartPolicy("any", delay="2s"),
        update=UpdatePolicy(1, order="stop-first", failure_action="rollback"),
    )


def add_floating_ip(stack, image, port=8080):
    """The vip service: keepalived on each node's own network floats SWARMML_VIP to a node whose gateway
    (on `port`) answers, so that the entry point survives the loss of any node."""
    nodes = stack.networks.get("nodes") or stack.network("nodes", external=True, external_name="host")
    return stack.service(
        "vip", image, mode="global", replicas=None, entrypoint=["/usr/local/bin/swarmml-vip"], user="root",
        environment={"SWARMML_VIP": "${SWARMML_VIP:-}", "SWARMML_VIP_ROUTER_ID": "${SWARMML_VIP_ROUTER_ID:-51}",
                     "SWARMML_VIP_CHECK_PORT": port},
        cap_add=["NET_ADMIN", "NET_RAW"], networks=[nodes], endpoint_mode="dnsrr", cpus=0.1, memory="64M",
        healthcheck=NO_HEALTHCHECK,
        restart=RestartPolicy("any", delay="1s"),
    )


def ml_stack(name="ml", registry=DEFAULT_REGISTRY, tag=DEFAULT_TAG, replicas=2, cpus=0.5, memory="512M",
             models=DEFAULT_MODELS, gateway=True, gateway_port=8080,
             gateway_config="stacks/gateway/haproxy.cfg", image=None, prometheus=True,
             prometheus_dir="stacks/prometheus", prometheus_image=None):
    """The project's ML stack: predictor replicas (dnsrr) behind the HAProxy gateway (host-mode port),
    each keeping an inference log on its node's volume, and Prometheus scraping them all.

    image replaces the predictor's `<registry>/swarmml/predictor:<tag>`, prometheus_image Prometheus's
    (prom/prometheus takes the same arguments). prometheus_dir holds the prometheus.yml and rules.yml
    that swarmml.observe.prometheus writes.
    """
    stack = Stack(name)
    net = stack.network("inference", attachable=True)
    add_predictor(stack, "predictor", image or f"{registry}/swarmml/predictor:{tag}", [net], replicas, cpus, memory,
                  models, inference_log=True)
    if gateway:
        add_gateway(stack, f"{registry}/swarmml/gateway:{tag}", [net], gateway_config, gateway_port)
    if prometheus:
        add_prometheus(stack, prometheus_image or f"{registry}/swarmml/prometheus:{tag}", [net], prometheus_dir)
    if gateway:
        add_floating_ip(stack, f"{registry}/swarmml/gateway:{tag}", gateway_port)
    return stack
