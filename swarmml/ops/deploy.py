"""`swarmml deploy`: load, convert, plan, apply, wait, report.

Compatible with `docker stack deploy`: the same names, labels and spec
fields, so the docker CLI sees swarmml stacks and swarmml sees the CLI's.
"""
import base64
import os
import time
from dataclasses import dataclass, field

from swarmml import errors
from swarmml.cluster import vip
from swarmml.ops import converge, rollout
from swarmml.stack import gateway_slots, imageref
from swarmml.stack.autoscale_policy import check_services
from swarmml.ops.autoscaled import hold_replicas
from swarmml.console import note
from swarmml.engine import configs as engine_configs
from swarmml.engine import images as engine_images
from swarmml.engine import networks as engine_networks
from swarmml.engine import services as engine_services
from swarmml.engine import swarm as engine_swarm
from swarmml.engine import cluster_of, target_client
from swarmml.engine.errors import InUse, NotFound
from swarmml.errors import RolloutFailed, SwarmmlError, UsageError
from swarmml.ops import history
from swarmml.stack import convert, load
from swarmml.stack.convert import IMAGE_LABEL
from swarmml.stack.plan import plan as make_plan
from swarmml.stack.plan import send_credentials

RESOLVE_MODES = ("always", "changed", "never")
# A replica that failed this many times since the deploy began, with none running in its place,
# fails the deploy (Swarm would retry it forever; the task's error is the useful answer).
GIVE_UP_AFTER = 3


@dataclass
class DeployResult:
    stack: str
    plan: object
    warnings: list = field(default_factory=list)
    revision: int | None = None
    convergence: converge.Outcome | None = None
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

    def raise_if_failed(self) -> None:
        """RolloutFailed when the stack's services did not converge (the CLI's error and the API's)."""
        if self.convergence is not None and not self.convergence.ok:
            raise RolloutFailed("; ".join(self.convergence.problems), self)


def deploy(files, name=None, prune=False, resolve_image="always", dry_run=False, detach=False, timeout=300,
           environ=None, env_file=None, client=None, show_progress=True, with_registry_auth=False):
    if resolve_image not in RESOLVE_MODES:
        raise UsageError(f"--resolve-image: expected one of {', '.join(RESOLVE_MODES)}, got {resolve_image!r}")
    started = time.monotonic()
    loaded = load(files, name=name, environ=environ, env_file=env_file)
    desired = convert(loaded)
    _check_before_the_engine(desired)
    client = client or target_client()
    engine_swarm.require_manager(client)
    defaults = _cluster_defaults(client, loaded, files)
    if defaults:
        loaded = load(files, name=name, environ={**defaults, **(os.environ if environ is None else environ)},
                      env_file=env_file)
        desired = convert(loaded)
    result = apply(client, desired, prune=prune, resolve_image=resolve_image, dry_run=dry_run, detach=detach,
                   timeout=timeout, show_progress=show_progress, with_registry_auth=with_registry_auth)
    result.warnings = loaded.warnings + result.warnings
    result.duration_s = time.monotonic() - started
    return result


def _check_before_the_engine(desired):
    """A bad autoscale policy, or more replicas than a gateway routes to, is refused before any engine is asked."""
    policies = check_services(desired.services)
    configs = {name: base64.b64decode(spec.get("Data") or "") for name, spec in desired.configs.items()}
    problems = gateway_slots.stack_problems(desired.services, configs, {n: p.max for n, p in policies.items()})
    if problems:
        raise UsageError(problems[0] + " (nothing changed)")


def _cluster_defaults(client, loaded, files):
    """On a local cluster: the variables it fills in (the gateway's virtual IP) that the environment
    and the .env file leave unset. The files are read again with them, so not from stdin."""
    cluster = cluster_of(client)
    if not cluster or "-" in [str(f) for f in files]:
        return {}
    return {k: v for k, v in vip.stack_defaults(cluster, loaded.name).items() if not loaded.environ.get(k)}


def image_choices(desired, current, resolve_image):
    """Pure: per service, how its image reaches the spec, following `docker stack deploy --resolve-image`.

    "resolve": ask the registry for the digest (and platforms) and pin it;
    "keep": the image is the one deployed last time (same as its com.docker.stack.image
    label), so keep the digest the service already runs;
    "as-is": send the image as written (tagged), unpinned.
    A new service is resolved unless the mode is never; an existing one always with
    always, only when its image changed with changed, and never with never.
    """
    out = {}
    for name, spec in desired.services.items():
        have = current.get("services", {}).get(name)
        if have is None:
            out[name] = "as-is" if resolve_image == "never" else "resolve"
            continue
        image = spec["TaskTemplate"]["ContainerSpec"].get("Image")
        same = image == (have["Spec"].get("Labels") or {}).get(IMAGE_LABEL)
        if resolve_image == "always" or (resolve_image == "changed" and not same):
            out[name] = "resolve"
        else:
            out[name] = "keep" if same else "as-is"
    return out


def keep_running_image(spec, running_spec):
    """Pure: take the image (with its digest) and the platforms it brought from the running spec."""
    image = running_spec["TaskTemplate"]["ContainerSpec"].get("Image")
    if image:
        spec["TaskTemplate"]["ContainerSpec"]["Image"] = image
    platforms = (running_spec["TaskTemplate"].get("Placement") or {}).get("Platforms")
    placement = spec["TaskTemplate"].setdefault("Placement", {})
    if platforms:
        placement["Platforms"] = platforms
    else:
        placement.pop("Platforms", None)


def _set_images(client, desired, current, resolve_image):
    """Write each service's image as docker/cli's client would; returns warnings."""
    warnings = []
    lookups = {}  # image -> (digest, platforms) or the error: one registry query per image
    for name, how in image_choices(desired, current, resolve_image).items():
        spec = desired.services[name]
        running = current.get("services", {}).get(name, {}).get("Spec")
        if how == "keep":
            keep_running_image(spec, running)
            continue
        cs = spec["TaskTemplate"]["ContainerSpec"]
        cs["Image"] = imageref.tagged(cs["Image"])
        if how == "resolve":
            problem = _pin(client, spec, lookups)
            if problem:
                same = running and (running.get("Labels") or {}).get(IMAGE_LABEL) == spec["Labels"].get(IMAGE_LABEL)
                if same:
                    # The registry can't be asked now: keep what runs rather than unpinning it.
                    keep_running_image(spec, running)
                    problem += "; keeping the digest the service runs"
                warnings.append(problem)
    return warnings


def apply(client, desired, prune=False, resolve_image="always", dry_run=False, detach=False, timeout=300,
          show_progress=True, record=True, with_registry_auth=False):
    """Make the swarm match a DesiredStack (also used by stack rollback)."""
    ns = desired.namespace
    current = engine_swarm.stack_objects(client, ns)
    net_names = engine_networks.network_names(client, current.get("services", {}).values())
    # Autoscaled services keep the replicas the autoscaler chose; a bad policy stops here.
    held = hold_replicas(desired.services, current.get("services", {}))
    warnings = _set_images(client, desired, current, resolve_image)
    # Images are now what the engine would store (pinned, kept or tagged), so compare them whole.
    the_plan = make_plan(desired, current, net_names, prune=prune, pin_digests=True)
    auths = {}
    if with_registry_auth:
        for name, spec in desired.services.items():
            image = spec["TaskTemplate"]["ContainerSpec"]["Image"]
            auths[name] = engine_services.registry_auth(client, image)
            if not auths[name]:
                warnings.append(f"{name}: --with-registry-auth: the docker config has no login for "
                                f"{engine_images.registry_of(image)}; its nodes pull without one")
        send_credentials(the_plan, {name for name, auth in auths.items() if auth})
    result = DeployResult(ns, the_plan, warnings, dry_run=dry_run)
    for line in held:
        note(line)
    if dry_run:
        return result

    missing = [n for n in desired.external_networks if not engine_networks.network_exists(client, n)]
    if missing:
        raise UsageError(f"network {missing[0]!r} is declared as external, but could not be found; create a "
                         "swarm-scoped network first (nothing was deployed)")
    created = []  # (remove function, id): undone if a later step fails, so nothing is left half-made
    since = converge.now(client)
    markers = {name: rollout.update_marker(have) for name, have in current["services"].items()}
    touched = []
    try:
        for a in the_plan.of("create", "network"):
            engine_networks.create_network(client, desired.networks[a.name])
            created.append((engine_networks.remove_network, a.name))
        for a in the_plan.of("create", "secret"):
            created.append((engine_configs.remove_secret,
                            engine_configs.create_secret(client, desired.secrets[a.name])))
        for a in the_plan.of("create", "config"):
            created.append((engine_configs.remove_config,
                            engine_configs.create_config(client, desired.configs[a.name])))
        _fill_ids(client, desired)
        for a in the_plan.actions:
            if a.kind != "service" or a.action not in ("create", "update"):
                continue
            spec = desired.services[a.name]
            auth = auths.get(a.name)
            if a.action == "create":
                sid, said = engine_services.create_service(client, spec, auth=auth)
                created.append((engine_services.remove_service, sid))
            else:
                have = current["services"][a.name]
                # Stack deploy has no --force: keep the counter so tasks are not redeployed for it.
                force = have["Spec"]["TaskTemplate"].get("ForceUpdate", 0)
                if force:
                    spec["TaskTemplate"]["ForceUpdate"] = force
                said = engine_services.update_service(client, have, spec, auth=auth)
            result.warnings += [f"{a.name}: {w}" for w in said]
            touched.append(a.name)
    except SwarmmlError as exc:
        undone, left = _undo(client, created)
        kept = f"; could not remove {len(left)}: {'; '.join(left)}" if left else ""
        raise type(exc)(f"{exc} (deploy stopped; removed the {undone} objects it had created{kept})") from None
    for a in the_plan.of("remove", "service"):
        engine_services.remove_service(client, current["services"][a.name]["ID"])
    if record and the_plan.changes_anything:
        result.revision = history.record_revision(client, desired.namespace, desired)
    if not detach and touched:
        result.convergence = converge.wait(client, touched, "deploy", markers, timeout=timeout, since=since,
                                           show=show_progress, give_up_after=GIVE_UP_AFTER)
    _cleanup(client, the_plan, current, detach)
    return result


def _pin(client, spec, lookups):
    """Pin the image to its registry digest, and its platforms, as docker/cli does; a warning when it can't."""
    cs = spec["TaskTemplate"]["ContainerSpec"]
    if cs["Image"] not in lookups:
        try:
            lookups[cs["Image"]] = engine_images.distribution(client, cs["Image"])
        except engine_images.RegistryLookupFailed as exc:
            lookups[cs["Image"]] = exc
    found = lookups[cs["Image"]]
    if isinstance(found, engine_images.RegistryLookupFailed):
        return (f"image {cs['Image']} could not be accessed on a registry to record its digest ({found.reason}); "
                "each node will resolve it independently, possibly to different versions")
    digest, platforms = found
    cs["Image"] = imageref.with_digest(cs["Image"], digest)
    if platforms:
        # As docker/cli: schedule only on nodes whose platform the image supports.
        spec["TaskTemplate"].setdefault("Placement", {})["Platforms"] = platforms
    return None


def _fill_ids(client, desired):
    secret_names = {r["SecretName"] for s in desired.services.values()
                    for r in s["TaskTemplate"]["ContainerSpec"].get("Secrets", [])}
    config_names = {r["ConfigName"] for s in desired.services.values()
                    for r in s["TaskTemplate"]["ContainerSpec"].get("Configs", [])}
    sids = engine_configs.secret_ids(client, secret_names) if secret_names else {}
    cids = engine_configs.config_ids(client, config_names) if config_names else {}
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


def _cleanup(client, the_plan, current, detach=False):
    """Old content-hashed secrets/configs and pruned networks; in-use ones stay for the next deploy."""
    for kind, remove in (("secret", engine_configs.remove_secret), ("config", engine_configs.remove_config)):
        for a in the_plan.of("remove", kind):
            try:
                remove(client, current[kind + "s"][a.name]["ID"])
            except InUse:
                note(f"kept {kind} {a.name}: still in use")
            except NotFound:
                pass  # removed by someone else meanwhile: what we wanted
    networks = {a.name: current["networks"][a.name] for a in the_plan.of("remove", "network")}
    # Tasks of services pruned (or moved off the network) a moment ago may still hold it: give them
    # time to stop, unless the user asked not to wait.
    in_use, refused = _remove_networks(client, networks, 0 if detach else 20)
    for name in in_use:
        note(f"kept network {name}: still in use")
    for name, why in refused.items():
        note(f"kept network {name}: {why}")


def _remove_networks(client, networks, timeout):
    """Remove networks ({name: {"ID"}}): (names still in use at the timeout, {name: why the engine refused}).

    Only "in use" is waited out (tasks are still shutting down); any other refusal is final.
    """
    deadline = time.monotonic() + timeout
    pending, refused = dict(networks), {}
    while pending:
        for name, net in list(pending.items()):
            try:
                engine_networks.remove_network(client, net["ID"])
                pending.pop(name)
            except NotFound:
                pending.pop(name)
            except InUse:
                pass
            except SwarmmlError as exc:
                refused[name] = str(exc)
                pending.pop(name)
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    return list(pending), refused


def _undo(client, created):
    """Remove what a failed deploy created, newest first: (how many went, [why each other one stayed])."""
    undone, left = 0, []
    for remove, ident in reversed(created):
        try:
            remove(client, ident)
            undone += 1
        except NotFound:
            undone += 1  # already gone
        except SwarmmlError as exc:
            left.append(str(exc))
    return undone, left


def remove_stack(client, namespace, timeout=60):
    """Like `docker stack rm`, but waits until the stack's networks are gone."""
    current = engine_swarm.stack_objects(client, namespace)
    if not any(current.values()):
        raise errors.NotFound(f"no stack named {namespace!r}")
    for s in current["services"].values():
        engine_services.remove_service(client, s["ID"])
    for kind, remove in (("secret", engine_configs.remove_secret), ("config", engine_configs.remove_config)):
        for obj in current[kind + "s"].values():
            remove(client, obj["ID"])
    history.forget(client, namespace)
    deadline = time.monotonic() + timeout
    pending, refused = _remove_networks(client, current["networks"], timeout)
    if refused:
        raise SwarmmlError("; ".join(refused.values()))
    # Removal is asynchronous on the managers: wait until the networks are no longer listed either,
    # so that a deploy right after `rm` does not find a network that is about to vanish.
    while not pending and time.monotonic() < deadline and engine_swarm.stack_objects(client, namespace)["networks"]:
        time.sleep(0.3)
    if pending:
        raise SwarmmlError(f"networks still in use after {timeout} s: {', '.join(pending)}")
    return {k: len(v) for k, v in current.items()}
