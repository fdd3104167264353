"""The HTTP front end: a raw ASGI app (no framework) over the data plane (dataplane.py).

It routes, reads request bodies within the size limit, writes answers, and
says a ModelServiceError as its status with {"error": message}; what each
route answers is the data plane's. It also runs the server's life as ASGI
tells it (lifespan: load, start, stop) and logs the drain.
"""
import asyncio
import re
import time

from swarmml_model_service import binary, dataplane, service_log
from swarmml_model_service.dataplane import DataPlane, json_bytes
from swarmml_model_service.errors import ModelServiceError, StartupFailed

MODEL_PATH = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?$")
REPLICA = dataplane.REPLICA.encode()
_JSON = (b"content-type", b"application/json")
_BINARY = (b"content-type", b"application/octet-stream")
_REPLICA = (b"x-replica", REPLICA)


def error_answer(error: ModelServiceError) -> tuple:
    """(HTTP status, JSON body) that tell the caller of error."""
    return error.status_code, json_bytes({"error": str(error)})


class App:
    def __init__(self, plane: DataPlane, health=None):
        self.plane = plane
        self.health = health
        self.max_body_bytes = plane.settings.max_body_bytes
        self._beat = None
        self._drain_started = None

    def listening(self, port):
        """The server accepts requests on port (called once it is bound)."""
        service_log.info("ready", port=port, health_port=self.plane.settings.health_port,
                         models=len(self.plane.models))

    def draining(self, signal_name):
        """A signal started the drain: say how much is left to answer, and by when."""
        self._drain_started = time.monotonic()
        service_log.info("draining", signal=signal_name, in_flight=self.plane.in_flight,
                         timeout_s=self.plane.settings.drain_timeout_s)

    # --- ASGI -------------------------------------------------------------
    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        path, method, plane = scope["path"].rstrip("/") or "/", scope["method"], self.plane
        try:
            if path.startswith("/v2/models/"):
                m = MODEL_PATH.match(path)
                if not m:
                    raise ModelServiceError(f"no route {path}", 404)
                name, version, action = m.groups()
                model = plane.model(name, version)
                if action == "/infer":
                    if method != "POST":
                        raise ModelServiceError("infer needs POST", 405)
                    return await plane.infer(model, _read_body(scope, receive, self.max_body_bytes), self, send)
                if action == "/ready":
                    ok = plane.model_ready(model)
                    return await _send(send, 200 if ok else 503, {"name": name, "ready": ok})
                return await _send(send, 200, plane.model_metadata(model))
            if path == "/v2/health/live":
                return await _send(send, 200, {"live": plane.live()})
            if path == "/v2/health/ready":
                ok = plane.ready()
                return await _send(send, 200 if ok else 503, {"ready": ok})
            if path == "/v2":
                return await _send(send, 200, plane.metadata())
            if path == "/metrics":
                return await _send_raw(send, 200, plane.metrics.render(), b"text/plain; version=0.0.4")
            raise ModelServiceError(f"no route {path}", 404)
        except ModelServiceError as exc:
            return await self.refuse(send, exc)

    # --- the data plane's Reply: infer's outcome as an HTTP answer -----------
    async def answer(self, send, out, json_length):
        if json_length is None:
            headers = [_JSON, _REPLICA, (b"content-length", str(len(out)).encode())]
        else:
            headers = [_BINARY, _REPLICA, (b"inference-header-content-length", str(json_length).encode()),
                       (b"content-length", str(len(out)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": out})

    async def refuse(self, send, error):
        status, body = error_answer(error)
        await _send_raw(send, status, body, b"application/json")

    # --- the server's life -----------------------------------------------------
    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.plane.load()
                    self.plane.start()
                    if self.health is not None:
                        self._beat = asyncio.get_running_loop().create_task(self.health.beat())
                except Exception as exc:
                    if not isinstance(exc, StartupFailed):
                        service_log.error("startup-failed", reason=f"{type(exc).__name__}: {exc}", exc_info=exc)
                    # No message: it is logged above, and uvicorn adds only its own "Application startup failed".
                    await send({"type": "lifespan.startup.failed", "message": ""})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.plane.stop()
                drained = self._drain_started
                service_log.info("stopped", drain_s=None if drained is None else f"{time.monotonic() - drained:.2f}")
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _read_body(scope, receive, limit):
    """(body, Inference-Header-Content-Length or None); a 413 past limit bytes."""
    header_length = None
    for k, v in scope["headers"]:
        if k == b"content-length" and v.isdigit() and int(v) > limit:
            raise ModelServiceError(f"request body of {int(v)} bytes is over the limit of {limit} bytes", 413)
        if k == binary.HEADER:
            header_length = binary.header_length(v)
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ModelServiceError(f"request body is over the limit of {limit} bytes", 413)
        chunks.append(chunk)
        if not message.get("more_body"):
            return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), header_length


async def _send(send, status, obj):
    body = json_bytes(obj)
    await send({"type": "http.response.start", "status": status,
                "headers": [_JSON, _REPLICA, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _send_raw(send, status, body, content_type):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), _REPLICA, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
