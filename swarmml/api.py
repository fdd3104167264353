"""The Python API for ops scripts: the CLI's verbs on one connected swarm.

    import swarmml
    sw = swarmml.connect()                      # as the CLI chooses: -H, contexts, DOCKER_HOST, the local cluster
    sw.deploy("docker-stack.yml")
    sw.scale(predictor=6, stack="ml")
    try:
        sw.update("predictor", stack="ml", image="registry:5000/swarmml/predictor:v2")
    except swarmml.RolloutFailed as failed:     # Swarm rolled it back; failed.result says why
        print(failed.result.cause)

Each verb takes the CLI's options as keyword arguments and returns the typed
result the CLI prints (its `to_json()` is the CLI's `-o json`). Errors are
the CLI's, rooted at SwarmmlError: NotFound for an unknown service or stack,
UsageError for bad input, RolloutFailed when a change did not take.
Progress bars are off unless progress=True.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from swarmml.build import predictor as builds
from swarmml.ops import deploy as deploys
from swarmml import ops
from swarmml.ops import services as svcs
from swarmml.build.artifacts import parse_model_option
from swarmml.engine import Target, resolve_target
from swarmml.engine import connect as connect_engine
from swarmml.engine import swarm
from swarmml.errors import RolloutFailed, UsageError
from swarmml.ops.results import OpResult, RebalanceResult, RollbackResult, ScaleResult, UpdateResult
from swarmml.verify.run import VerifyReport
from swarmml.verify.run import verify as run_verify

__all__ = ["Swarm", "connect", "RolloutFailed", "VerifyReport"]


class Swarm:
    """One swarm's manager, and the CLI's verbs on it."""

    def __init__(self, target: Target, progress: bool = False):
        self.target = target
        self.progress = progress
        self.client = connect_engine(target.base_url, tls=target.tls)

    def __repr__(self) -> str:
        return f"Swarm({self.target.base_url!r}, chosen by {self.target.reason})"

    # --- stacks ----------------------------------------------------------
    def deploy(self, *files: str, name: str | None = None, prune: bool = False, resolve_image: str = "always",
               dry_run: bool = False, detach: bool = False, timeout: int = 300, env_file: str | None = None,
               environ: Mapping[str, str] | None = None, with_registry_auth: bool = False) -> deploys.DeployResult:
        if not files:
            raise UsageError("deploy: give at least one stack file")
        result = deploys.deploy(list(files), name=name, prune=prune, resolve_image=resolve_image, dry_run=dry_run,
                                detach=detach, timeout=timeout, environ=dict(environ) if environ else None,
                                env_file=env_file, client=self.client, show_progress=self.progress,
                                with_registry_auth=with_registry_auth)
        result.raise_if_failed()
        return result

    def ls(self) -> dict[str, int]:
        """Stack name -> number of services (swarmml's stacks and docker stack deploy's)."""
        return dict(sorted(swarm.stacks(self.client).items()))

    def ps(self, stack: str) -> svcs.StackStatus:
        return svcs.status(self.client, stack)

    def rm(self, stack: str) -> dict[str, int]:
        return deploys.remove_stack(self.client, stack)

    def url(self, service: str, stack: str | None = None) -> str:
        return svcs.url(self.client, service, stack)

    # --- day 2 -----------------------------------------------------------
    def scale(self, replicas: Mapping[str, int] | None = None, *, stack: str | None = None, detach: bool = False,
              timeout: int = 300, **by_name: int) -> ScaleResult:
        """scale({"predictor": 6}) or scale(predictor=6)."""
        wanted = {**(replicas or {}), **by_name}
        return _checked(ops.scale(self.client, wanted, stack=stack, detach=detach, timeout=timeout,
                                  show=self.progress))

    def update(self, service: str, *, stack: str | None = None, image: str | None = None, env: Sequence[str] = (),
               replicas: int | str | None = None, cpus: float | str | None = None, memory: str | None = None,
               parallelism: int | str | None = None, delay: str | None = None, order: str | None = None,
               failure_action: str | None = None, monitor: str | None = None, force: bool = False,
               resolve_image: bool = True, detach: bool = False, timeout: int = 600) -> UpdateResult:
        return _checked(ops.update(self.client, service, stack=stack, detach=detach, timeout=timeout,
                                   show=self.progress, resolve=resolve_image, image=image, env=tuple(env),
                                   replicas=_opt_str(replicas), cpus=_opt_str(cpus), memory=memory,
                                   parallelism=_opt_str(parallelism), delay=delay, order=order,
                                   failure_action=failure_action, monitor=monitor, force=force))

    def rollback(self, service: str | None = None, *, stack: str | None = None, to: int | None = None,
                 detach: bool = False, timeout: int = 600) -> RollbackResult:
        """A service to its previous spec, or (no service) the stack to a recorded revision."""
        if service is None:
            if stack is None:
                raise UsageError("rollback: give a service, or stack= for the whole stack")
            result = ops.rollback_stack(self.client, stack, to=to, detach=detach, timeout=timeout, show=self.progress)
        else:
            if to is not None:
                raise UsageError("rollback: to= is for a whole stack; give stack= without a service")
            result = ops.rollback(self.client, service, stack=stack, detach=detach, timeout=timeout,
                                  show=self.progress)
        return _checked(result)

    def rebalance(self, service: str | None = None, *, stack: str | None = None, threshold: int = 1,
                  strategy: str = "scale", dry_run: bool = False, timeout: int = 600) -> RebalanceResult:
        return _checked(ops.rebalance(self.client, service, stack=stack, threshold=threshold, strategy=strategy,
                                      timeout=timeout, show=self.progress, dry_run=dry_run))

    def verify(self, service: str = "predictor", *, stack: str | None = None, gateway: str = "gateway",
               steps: Sequence[int] | None = None, cpus: float = 0.25, model: str = "iris-rf",
               batching: str = "off", duration: float = 10.0, repeat: int = 2, connections: int | None = None,
               rate: float | None = None, min_efficiency: str = "0.8", slo: str | None = None,
               load: str | None = None, drill: str | None = None, node: str = "worker", how: str = "stop",
               drill_rate: float = 100.0, max_recovery_s: float = 30.0,
               max_failed_pct: float = 0.1, fill_idle: bool | None = None) -> VerifyReport:
        """`swarmml verify`'s report (report["verdict"]: pass, fail, or inconclusive; report["problems"] and
        report["inconclusive"] say why).

        steps: None fits the default curve (1, 2, 4, 6) to the cluster's free CPU. Options as the CLI's: load is
        --for ("200/s"), max_recovery_s --max-recovery, max_failed_pct --max-failed, fill_idle --fill-idle (None: on
        for a local cluster).
        A verify that measured and found the service short returns its report; bad options raise UsageError.
        """
        return run_verify(self.client, service, stack=stack, gateway=gateway,
                          steps=None if steps is None else tuple(steps), cpus=cpus, model=model,
                          batching=batching, duration=duration, repeat=repeat,
                          connections=connections, rate=rate, min_efficiency=min_efficiency, slo=slo, load=load,
                          drill=drill, node=node, how=how, drill_rate=drill_rate, max_recovery_s=max_recovery_s,
                          max_failed_pct=max_failed_pct, cluster=self.target.cluster, show=self.progress,
                          fill_idle=fill_idle)

    # --- images ----------------------------------------------------------
    def build(self, *models: str, tag: str = "latest", push: bool | str = True, base: str = "auto",
              trust: Sequence[str] = (), trust_files: Sequence[str] = (), allow_pickle: bool = False,
              sklearn_version: str | None = None, signature: str | None = None,
              model_version: str | None = None) -> builds.BuildResult:
        """Build (and by default push to this swarm's registry) the predictor and gateway images.

        models: "NAME=PATH" or "PATH", as `swarmml build --model`; none means the iris models.
        push: True for this swarm's own registry (a swarmml cluster), "REGISTRY[/PREFIX]" for another, False not to.
        """
        options = builds.ModelOptions([parse_model_option(m) for m in models], list(trust), list(trust_files),
                                      allow_pickle, sklearn_version, signature)
        return builds.build(tag=tag, base_mode=base, push=push, cluster=self.target.cluster,
                            model_version=model_version, models=options)


def connect(host: str | None = None, context: str | None = None, cluster: str | None = None,
            progress: bool = False) -> Swarm:
    """The swarm the CLI would act on; or the one at `host` (as -H), behind a docker `context`, or a local `cluster`."""
    if sum(x is not None for x in (host, context, cluster)) > 1:
        raise UsageError("connect: give one of host=, context= or cluster=")
    return Swarm(resolve_target(cluster, host=host, context=context), progress=progress)


R = TypeVar("R", bound=OpResult)


def _checked(result: R) -> R:
    result.raise_if_failed()
    return result


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
