"""The HTTP layer: a raw ASGI app (no framework) over protocol, models and batcher."""
import asyncio
import re
import socket
import time

import orjson
import sklearn

from swarmml_model_service import __version__, binary, service_log
from swarmml_model_service.batcher import MicroBatcher
from swarmml_model_service.inference_log import InferenceLog
from swarmml_model_service.metrics import Metrics
from swarmml_model_service.models import ModelError, blaming, load_model, load_trusted_types, model_names, warm_up
from swarmml_model_service.protocol import BadRequest, encode_response, model_metadata, parse_request

MODEL_PATH = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?$")
REPLICA = socket.gethostname().encode()
JSON_HEADERS = [(b"content-type", b"application/json"), (b"x-replica", REPLICA)]
BINARY_HEADERS = [(b"content-type", b"application/octet-stream"), (b"x-replica", REPLICA)]
EXTENSIONS = ["binary_tensor_data"]


def _dumps(obj):
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


class NotFound(Exception):
    pass


class StartupFailed(Exception):
    """Startup failed for reasons already logged, one line each."""


class App:
    def __init__(self, settings, health=None):
        self.settings = settings
        self.health = health
        self._beat = None
        self.models = {}
        self.batchers = {}
        self.metrics = Metrics(settings.metrics)
        self.model_metrics = {}
        self.inference_log = None
        self.ready = False
        self.in_flight = 0  # inference requests between their headers and their answer
        self.errors = service_log.Repeats("infer-failed")
        self._flusher = None
        self._drain_started = None

    # --- lifecycle ---------------------------------------------------------
    def load(self):
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
            self.inference_log = InferenceLog(s.inference_log, REPLICA.decode(), s.inference_log_sample,
                                              s.inference_log_max_bytes, s.inference_log_keep,
                                              on_drop=self.metrics.log_dropped.inc)

    def _load_model(self, name, trusted):
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

    def listening(self, port):
        """The server accepts requests on port (called once it is bound)."""
        service_log.info("ready", port=port, health_port=self.settings.health_port, models=len(self.models))

    def draining(self, signal_name):
        """A signal started the drain: say how much is left to answer, and by when."""
        self._drain_started = time.monotonic()
        service_log.info("draining", signal=signal_name, in_flight=self.in_flight,
                         timeout_s=self.settings.drain_timeout_s)

    def start_batchers(self):
        for name, m in self.models.items():
            if m.batching:
                mm = self.model_metrics[name]
                b = MicroBatcher(lambda payload, outs, m=m, mm=mm: self._predict(m, mm, payload, outs),
                                 self.settings.max_batch_size, self.settings.max_batch_wait_ms,
                                 on_batch=lambda n, waits, mm=mm: _observe_batch(mm, n, waits))
                b.start()
                self.batchers[name] = b
        self.ready = True

    def _predict(self, model, mm, payload, outputs):
        t0 = time.perf_counter()
        est, X = model.estimator, model.to_input(payload)
        result = {name: getattr(est, name)(X) for name in outputs}
        mm.compute.observe(time.perf_counter() - t0)
        return result

    # --- ASGI -------------------------------------------------------------
    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        path, method = scope["path"].rstrip("/") or "/", scope["method"]
        try:
            if path.startswith("/v2/models/"):
                m = MODEL_PATH.match(path)
                if not m:
                    raise NotFound(f"no route {path}")
                name, version, action = m.groups()
                model = self._model(name, version)
                if action == "/infer":
                    if method != "POST":
                        return await _send(send, 405, {"error": "infer needs POST"})
                    return await self._infer(model, scope, receive, send)
                if action == "/ready":
                    ok = self.ready
                    return await _send(send, 200 if ok else 503, {"name": name, "ready": ok})
                return await _send(send, 200, model_metadata(model.name, model.version, model.n_features,
                                                             model.classes, model.signature, model.outputs))
            if path == "/v2/health/live":
                return await _send(send, 200, {"live": True})
            if path == "/v2/health/ready":
                return await _send(send, 200 if self.ready else 503, {"ready": self.ready})
            if path == "/v2":
                return await _send(send, 200, {"name": "swarmml-model-service", "version": __version__,
                                               "extensions": EXTENSIONS, "models": sorted(self.models)})
            if path == "/metrics":
                return await _send_raw(send, 200, self.metrics.render(), b"text/plain; version=0.0.4")
            raise NotFound(f"no route {path}")
        except NotFound as exc:
            return await _send(send, 404, {"error": str(exc)})

    def _model(self, name, version):
        model = self.models.get(name)
        if model is None:
            raise NotFound(f"model {name!r} not found")
        if version is not None and version != model.version:
            raise NotFound(f"model {name!r} version {version!r} not found (serving {model.version!r})")
        return model

    async def _infer(self, model, scope, receive, send):
        mm = self.model_metrics[model.name]
        if not self.ready:
            mm.failed(503)
            return await _send(send, 503, {"error": "not ready"})
        t0 = time.perf_counter()
        mm.in_flight.inc()
        self.in_flight += 1
        code = 200
        log = self.inference_log
        req_id = head = out = json_length = None
        try:
            raw, header_length = await _read_body(scope, receive, self.settings.max_body_bytes)
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
            out, json_length = encode_response(model.name, model.version, req, results, _dumps)
            if json_length is None:
                await _send_raw(send, 200, out, b"application/json")
            else:
                await _send_binary(send, out, json_length)
            mm.success.inc()
        except BadRequest as exc:
            code = 400
            await _send(send, 400, {"error": str(exc)})
        except BodyTooLarge as exc:
            code = 413
            await _send(send, 413, {"error": str(exc)})
        except Exception as exc:  # a model failure is the server's fault, not the caller's
            code = 500
            kind = type(exc).__name__
            self.errors.report((model.name, kind), model=model.name, version=model.version, status=500, error=kind,
                               reason=str(exc))
            await _send(send, 500, {"error": f"inference failed: {kind}: {exc}"})
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

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.load()
                    self.start_batchers()
                    loop = asyncio.get_running_loop()
                    if self.health is not None:
                        self._beat = loop.create_task(self.health.beat())
                    self._flusher = loop.create_task(self.errors.run_flusher())
                except Exception as exc:
                    if not isinstance(exc, StartupFailed):
                        service_log.error("startup-failed", reason=f"{type(exc).__name__}: {exc}", exc_info=exc)
                    # No message: it is logged above, and uvicorn adds only its own "Application startup failed".
                    await send({"type": "lifespan.startup.failed", "message": ""})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.ready = False
                for b in self.batchers.values():
                    await b.stop()
                if self.inference_log is not None:
                    # After uvicorn's drain: every answered request has put its line by now.
                    await asyncio.get_running_loop().run_in_executor(None, self.inference_log.close)
                if self._flusher is not None:
                    self._flusher.cancel()
                self.errors.flush(force=True)  # the failures counted since their last line
                drained = self._drain_started
                service_log.info("stopped", drain_s=None if drained is None else f"{time.monotonic() - drained:.2f}")
                await send({"type": "lifespan.shutdown.complete"})
                return


class BodyTooLarge(Exception):
    pass


def _observe_batch(mm, n, waits):
    mm.batch.observe(n)
    for w in waits:
        mm.queue.observe(w)


async def _read_body(scope, receive, limit):
    """(body, Inference-Header-Content-Length or None)."""
    header_length = None
    for k, v in scope["headers"]:
        if k == b"content-length" and v.isdigit() and int(v) > limit:
            raise BodyTooLarge(f"request body of {int(v)} bytes is over the limit of {limit} bytes")
        if k == binary.HEADER:
            header_length = binary.header_length(v)
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), header_length


async def _send(send, status, obj):
    body = _dumps(obj)
    await send({"type": "http.response.start", "status": status,
                "headers": JSON_HEADERS + [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _send_binary(send, body, json_length):
    await send({"type": "http.response.start", "status": 200,
                "headers": BINARY_HEADERS + [(b"inference-header-content-length", str(json_length).encode()),
                                             (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _send_raw(send, status, body, content_type):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"x-replica", REPLICA),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
