"""`swarmml deploy`: load, convert, plan, apply, wait, report.

Compatible with `docker stack deploy`: the same names, labels and spec
fields, so the docker CLI sees swarmml stacks and swarmml sees the CLI's.
"""
import time
from dataclasses import dataclass, field

from swarmml import converge, history
from swarmml.console import note
from swarmml.engine import swarm as engine
from swarmml.engine import target_client
from swarmml.errors import SwarmmlError, UsageError
from swarmml.stack import convert, load
from swarmml.stack.plan import plan as make_plan

RESOLVE_MODES = ("always", "changed", "never")


@dataclass
class DeployResult:
    stack: str
    plan: object
    warnings: list = field(default_factory=list)
    revision: int | None = None
    convergence: object = None
    duration_s: float = 0.0
    dry_run: bool = False

    def to_json(self):
        out = {"stack": self.stack, "dry_run": self.dry_run, "plan": self.plan.to_json()["actions"],
               "warnings": self.warnings, "revision": self.revision, "duration_s": round(self.duration_s, 3)}
        if self.convergence is not None:
            out["converged"] = self.convergence.ok
            out["convergence_s"] = round(self.convergence.duration_s, 3)
            out["placement"] = [p.to_dict() for p in self.convergence.placements]
            out["problems"] = self.convergence.problems
        return out


def deploy(files, name=None, prune=False, resolve_image="always", dry_run=False, detach=False, timeout=300,
           environ=None, env_file=None, client=None, show_progress=True):
    if resolve_image not in RESOLVE_MODES:
        raise UsageError(f"--resolve-image: expected one of {', '.join(RESOLVE_MODES)}, got {resolve_image!r}")
    started = time.monotonic()
    loaded = load(files, name=name, environ=environ, env_file=env_file)
    desired = convert(loaded)
    client = client or target_client()
    engine.require_manager(client)
    result = apply(client, desired, prune=prune, resolve_image=resolve_image, dry_run=dry_run, detach=detach,
                   timeout=timeout, show_progress=show_progress)
    result.warnings = loaded.warnings + result.warnings
    result.duration_s = time.monotonic() - started
    return result


def apply(client, desired, prune=False, resolve_image="always", dry_run=False, detach=False, timeout=300,
          show_progress=True, record=True):
    """Make the swarm match a DesiredStack (also used by stack rollback)."""
    ns = desired.namespace
    warnings = []
    current = engine.stack_objects(client, ns)
    net_names = engine.network_names(client)
    pin = resolve_image != "never"
    if pin:
        first = make_plan(desired, current, net_names, prune=prune, pin_digests=False)
        changed = {a.name for a in first.actions if a.kind == "service"
                   and (a.action == "create" or any(p.endswith("Image") for p, _, _ in a.changes))}
        for sname, spec in desired.services.items():
            if resolve_image == "changed" and sname not in changed:
                # Keep the digest already running, as docker/cli does with --resolve-image changed.
                running = current["services"].get(sname, {}).get("Spec", {})
                image = running.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image")
                if image:
                    spec["TaskTemplate"]["ContainerSpec"]["Image"] = image
                continue
            warnings += _pin(client, spec)
    the_plan = make_plan(desired, current, net_names, prune=prune, pin_digests=pin)
    result = DeployResult(ns, the_plan, warnings, dry_run=dry_run)
    if dry_run:
        return result

    missing = [n for n in desired.external_networks if not engine.network_exists(client, n)]
    if missing:
        raise UsageError(f"external network {missing[0]!r} does not exist; create it first (nothing was deployed)")
    created = []  # (remove function, id): undone if a later step fails, so nothing is left half-made
    since = converge.now_iso()
    touched = []
    try:
        for a in the_plan.of("create", "network"):
            engine.create_network(client, desired.networks[a.name])
            created.append((engine.remove_network, a.name))
        for a in the_plan.of("create", "secret"):
            created.append((engine.remove_secret, engine.create_secret(client, desired.secrets[a.name])))
        for a in the_plan.of("create", "config"):
            created.append((engine.remove_config, engine.create_config(client, desired.configs[a.name])))
        _fill_ids(client, desired)
        for a in the_plan.actions:
            if a.kind != "service" or a.action not in ("create", "update"):
                continue
            spec = desired.services[a.name]
            if a.action == "create":
                created.append((engine.remove_service, engine.create_service(client, spec)))
            else:
                have = current["services"][a.name]
                force = have["Spec"]["TaskTemplate"].get("ForceUpdate", 0)
                if force:
                    spec["TaskTemplate"]["ForceUpdate"] = force
                engine.update_service(client, have["ID"], have["Version"], spec)
            touched.append(a.name)
    except SwarmmlError as exc:
        undone = _undo(client, created)
        raise type(exc)(f"{exc} (deploy stopped; removed the {undone} objects it had created)") from None
    for a in the_plan.of("remove", "service"):
        engine.remove_service(client, current["services"][a.name]["ID"])
    if record and the_plan.changes_anything:
        result.revision = history.record(client, desired)
    if not detach and touched:
        result.convergence = converge.wait(client, touched, timeout=timeout, since=since, show=show_progress)
    _cleanup(client, the_plan, current)
    return result


def _pin(client, spec):
    image = spec["TaskTemplate"]["ContainerSpec"]["Image"]
    if "@sha256:" in image:
        return []
    try:
        digest, platforms = engine.distribution(client, image)
    except SwarmmlError as exc:
        return [f"image {image} could not be resolved to a digest ({exc}); nodes may run different versions"]
    spec["TaskTemplate"]["ContainerSpec"]["Image"] = f"{image}@{digest}"
    if platforms:
        # As docker/cli: schedule only on nodes whose platform the image supports.
        spec["TaskTemplate"].setdefault("Placement", {})["Platforms"] = platforms
    return []


def _fill_ids(client, desired):
    secret_names = {r["SecretName"] for s in desired.services.values()
                    for r in s["TaskTemplate"]["ContainerSpec"].get("Secrets", [])}
    config_names = {r["ConfigName"] for s in desired.services.values()
                    for r in s["TaskTemplate"]["ContainerSpec"].get("Configs", [])}
    sids = engine.secret_ids(client, secret_names) if secret_names else {}
    cids = engine.config_ids(client, config_names) if config_names else {}
    for s in desired.services.values():
        cs = s["TaskTemplate"]["ContainerSpec"]
        for r in cs.get("Secrets", []):
            if r["SecretName"] not in sids:
                raise UsageError(f"secret {r['SecretName']} does not exist (external secrets must be created first)")
            r["SecretID"] = sids[r["SecretName"]]
        for r in cs.get("Configs", []):
            if r["ConfigName"] not in cids:
                raise UsageError(f"config {r['ConfigName']} does not exist (external configs must be created first)")
            r["ConfigID"] = cids[r["ConfigName"]]


def _cleanup(client, the_plan, current):
    """Old content-hashed secrets/configs and pruned networks; in-use ones stay for the next deploy."""
    for kind, remove in (("secret", engine.remove_secret), ("config", engine.remove_config),
                         ("network", engine.remove_network)):
        for a in the_plan.of("remove", kind):
            try:
                remove(client, current[kind + "s"][a.name]["ID"])
            except SwarmmlError as exc:
                note(f"kept {kind} {a.name}: {exc}")


def _undo(client, created):
    undone = 0
    for remove, ident in reversed(created):
        try:
            remove(client, ident)
            undone += 1
        except SwarmmlError:
            pass
    return undone


def remove_stack(client, namespace, timeout=60):
    """Like `docker stack rm`, but waits until the stack's networks are gone."""
    current = engine.stack_objects(client, namespace)
    if not any(current.values()):
        from swarmml.errors import NotFound
        raise NotFound(f"no stack named {namespace!r}")
    for s in current["services"].values():
        engine.remove_service(client, s["ID"])
    for kind, remove in (("secret", engine.remove_secret), ("config", engine.remove_config)):
        for obj in current[kind + "s"].values():
            remove(client, obj["ID"])
    history.forget(client, namespace)
    deadline = time.monotonic() + timeout
    pending = dict(current["networks"])
    while pending and time.monotonic() < deadline:
        for name, net in list(pending.items()):
            try:
                engine.remove_network(client, net["ID"])
                pending.pop(name)
            except SwarmmlError as exc:
                if "not found" in str(exc).lower() or "No such network" in str(exc):
                    pending.pop(name)
        if pending:
            time.sleep(0.5)
    # Removal is asynchronous on the managers: wait until the networks are no longer listed either,
    # so that a deploy right after `rm` does not find a network that is about to vanish.
    while not pending and time.monotonic() < deadline and engine.stack_objects(client, namespace)["networks"]:
        time.sleep(0.3)
    if pending:
        raise SwarmmlError(f"networks still in use after {timeout} s: {', '.join(pending)}")
    return {k: len(v) for k, v in current.items()}
