"""The data plane: what the Open Inference Protocol asks of a server, with no transport in it.

Live, ready, server and model metadata, and infer (parse, predict with or
without the micro-batcher, encode), each request counted in the metrics and
the inference log. Whatever goes wrong is a ModelServiceError; a front end
(app.py for HTTP, gRPC later) routes, reads and writes its own wire, and says
a ModelServiceError in its own terms. Nothing here knows HTTP.

infer is handed the front end's body read (a coroutine) and answers through
the front end's Reply instead of returning: a request counts as in flight,
and in its latency and log line, from its headers until its answer is
written, as when one class did both; and the read and the answer cost no
await or allocation more than direct calls did.
"""
import asyncio
import socket
import time
from typing import Any, Coroutine, Optional, Protocol

import orjson
import sklearn

from swarmml_model_service import __version__, binary, service_log
from swarmml_model_service.batcher import MicroBatcher
from swarmml_model_service.config import Settings
from swarmml_model_service.errors import BadRequest, ModelError, ModelServiceError, StartupFailed
from swarmml_model_service.inference_log import InferenceLog
from swarmml_model_service.metrics import Metrics
from swarmml_model_service.models import LoadedModel, blaming, load_model, load_trusted_types, model_names, warm_up
from swarmml_model_service.protocol import encode_response, model_metadata, parse_request

REPLICA = socket.gethostname()  # names this process in answers and in its inference log file
EXTENSIONS = ["binary_tensor_data"]


def json_bytes(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


class Reply(Protocol):
    """How a front end writes infer's outcome on a request's channel (`to`: for ASGI, its send)."""

    async def answer(self, to: Any, out: bytes, json_length: Optional[int]) -> None:
        """out: the V2 JSON response; with json_length, its first json_length bytes, then binary tensors."""

    async def refuse(self, to: Any, error: ModelServiceError) -> None:
        """The request gets no result: error says why, and its status_code how."""


class DataPlane:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.models: dict = {}
        self.batchers: dict = {}
        self.metrics = Metrics(settings.metrics)
        self.model_metrics: dict = {}
        self.inference_log: Optional[InferenceLog] = None
        self._ready = False
        self.in_flight = 0  # inference requests between their headers and their answer
        self.errors = service_log.Repeats("infer-failed")
        self._flusher: Optional[asyncio.Task] = None

    # --- lifecycle ---------------------------------------------------------
    def load(self) -> None:
        """Load and warm up every model; StartupFailed (each cause already logged) if any fails."""
        s = self.settings
        # We reject NaN/inf ourselves before predict; skip scikit-learn's second check.
        sklearn.set_config(assume_finite=True)
        trusted = load_trusted_types(s.trusted_types_file, s.trusted_types)
        try:
            names = model_names(s.models_dir, s.models)
        except ModelError as exc:
            service_log.error("model-load-failed", file=exc.file or s.models_dir, reason=exc.reason)
            raise StartupFailed(str(exc)) from exc
        # Every model is tried, so that one start tells the operator of every broken model, not only the first.
        failed = [name for name in names if not self._load_model(name, trusted)]
        if failed:
            raise StartupFailed(f"models that failed to load: {', '.join(failed)}")
        if s.inference_log:
            self.inference_log = InferenceLog(s.inference_log, REPLICA, s.inference_log_sample,
                                              s.inference_log_max_bytes, s.inference_log_keep,
                                              on_drop=self.metrics.log_dropped.inc)

    def _load_model(self, name: str, trusted: set) -> bool:
        """Load and warm up one model, with a line saying how it went; False if it failed."""
        s = self.settings
        try:
            m = load_model(s.models_dir, name, trusted, s.allow_pickle, s.batching)
            with blaming(m.artifact):
                skipped = warm_up(m)
        except ModelError as exc:
            service_log.error("model-load-failed", model=name, file=exc.file, reason=exc.reason)
            return False
        if skipped:
            service_log.warning("warm-up-skipped", model=name, reason=skipped)
        self.models[name] = m
        self.model_metrics[name] = self.metrics.for_model(name, m.version)
        service_log.info("model-loaded", model=name, version=m.version, sklearn=sklearn.__version__,
                         batching="on" if m.batching else "off", inputs=m.n_features, outputs=len(m.outputs),
                         file=m.artifact)
        return True

    def start(self) -> None:
        """On the running loop, once loaded: the batchers and the error lines' flusher; then ready."""
        for name, m in self.models.items():
            if m.batching:
                mm = self.model_metrics[name]
                b = MicroBatcher(lambda payload, outs, m=m, mm=mm: self._predict(m, mm, payload, outs),
                                 self.settings.max_batch_size, self.settings.max_batch_wait_ms,
                                 on_batch=lambda n, waits, mm=mm: _observe_batch(mm, n, waits))
                b.start()
                self.batchers[name] = b
        self._flusher = asyncio.get_running_loop().create_task(self.errors.run_flusher())
        self._ready = True

    async def stop(self) -> None:
        """Once the front ends have drained: stop batching, write the inference log out, log the last counts."""
        self._ready = False
        for b in self.batchers.values():
            await b.stop()
        if self.inference_log is not None:
            # After the drain: every answered request has put its line by now.
            await asyncio.get_running_loop().run_in_executor(None, self.inference_log.close)
        if self._flusher is not None:
            self._flusher.cancel()
        self.errors.flush(force=True)  # the failures counted since their last line

    # --- the protocol's operations -----------------------------------------
    def live(self) -> bool:
        return True  # answering at all is the sign of life; health.py watches for a stalled loop

    def ready(self) -> bool:
        return self._ready

    def metadata(self) -> dict:
        return {"name": "swarmml-model-service", "version": __version__, "extensions": EXTENSIONS,
                "models": sorted(self.models)}

    def model(self, name: str, version: Optional[str] = None) -> LoadedModel:
        """The model a request names (any version, or the one served); a 404 otherwise."""
        model = self.models.get(name)
        if model is None:
            raise ModelServiceError(f"model {name!r} not found", 404)
        if version is not None and version != model.version:
            raise ModelServiceError(f"model {name!r} version {version!r} not found (serving {model.version!r})", 404)
        return model

    def model_ready(self, model: LoadedModel) -> bool:
        return self._ready  # every model is loaded before the server is ready, and none is unloaded

    def model_metadata(self, model: LoadedModel) -> dict:
        return model_metadata(model.name, model.version, model.n_features, model.classes, model.signature,
                              model.outputs)

    async def infer(self, model: LoadedModel, read: Coroutine, reply: Reply, to: Any) -> None:
        """Answer one infer request: read gives (body bytes, binary header length or None) when awaited.

        Every outcome goes to reply (an answer, or a refusal with its
        ModelServiceError) and is counted; nothing is raised but what reply raises.
        """
        mm = self.model_metrics[model.name]
        if not self._ready:
            read.close()  # never awaited: say so, or Python warns that it was forgotten
            mm.failed(503)
            return await reply.refuse(to, ModelServiceError("not ready", 503))
        t0 = time.perf_counter()
        mm.in_flight.inc()
        self.in_flight += 1
        code = 200
        log = self.inference_log
        req_id = head = json_length = None
        out: Any = None  # the answer's bytes, once encoded
        try:
            raw, header_length = await read
            head, tail = binary.split_body(raw, header_length)
            try:
                body = orjson.loads(head)
            except orjson.JSONDecodeError as exc:
                raise BadRequest(f"malformed JSON: {exc}") from None
            if type(body) is dict:  # the caller's id, for the inference log, even when the request is bad
                req_id = body.get("id")
            req = parse_request(body, tail, model.n_features, model.signature, model.outputs)
            batcher = self.batchers.get(model.name)
            if batcher is not None:
                results = await batcher.submit(req.payload, req.n_rows, req.outputs)
            else:
                results = self._predict(model, mm, req.payload, req.outputs)
                mm.batch.observe(req.n_rows)
            out, json_length = encode_response(model.name, model.version, req, results, json_bytes)
            await reply.answer(to, out, json_length)
            mm.success.inc()
        except ModelServiceError as exc:
            code = exc.status_code
            await reply.refuse(to, exc)
        except Exception as exc:  # a model failure is the server's fault, not the caller's
            code = 500
            await reply.refuse(to, self._failed(model, exc))
        finally:
            mm.in_flight.dec()
            self.in_flight -= 1
            latency = time.perf_counter() - t0
            mm.request.observe(latency)
            if code != 200:
                mm.failed(code)
            if log is not None:
                # The writer thread parses the sampled bodies: here they are only referenced.
                sample = None
                if log.wants_sample() and head is not None:
                    sample = (head, out if json_length is None else out[:json_length]) if code == 200 else (head, None)
                log.put(req_id if type(req_id) is str else None, model.name, model.version, latency, code, sample)

    # --- helpers -----------------------------------------------------------
    def _predict(self, model: LoadedModel, mm, payload, outputs: tuple) -> dict:
        t0 = time.perf_counter()
        est, X = model.estimator, model.to_input(payload)
        result = {name: getattr(est, name)(X) for name in outputs}
        mm.compute.observe(time.perf_counter() - t0)
        return result

    def _failed(self, model: LoadedModel, exc: Exception) -> ModelServiceError:
        """The 500 for a model that failed on a request, its kind logged (once per kind and minute)."""
        kind = type(exc).__name__
        self.errors.report((model.name, kind), model=model.name, version=model.version, status=500, error=kind,
                           reason=str(exc))
        return ModelServiceError(f"inference failed: {kind}: {exc}", 500)


def _observe_batch(mm, n: int, waits: list) -> None:
    mm.batch.observe(n)
    for w in waits:
        mm.queue.observe(w)
