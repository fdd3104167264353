"""Run the server: one process, uvloop + httptools, graceful drain on SIGTERM."""
import os
import signal
import sys

# One BLAS thread: replicas are how this service scales, and oversubscribed
# BLAS threads in a CPU-limited container only add latency.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import uvicorn  # noqa: E402

from swarmml_model_service import service_log  # noqa: E402
from swarmml_model_service.app import App  # noqa: E402
from swarmml_model_service.config import Settings  # noqa: E402
from swarmml_model_service.dataplane import DataPlane  # noqa: E402
from swarmml_model_service.health import Health  # noqa: E402


class Server(uvicorn.Server):
    """uvicorn's server, telling the app when it listens and when a signal starts the drain."""

    def __init__(self, config, app):
        super().__init__(config)
        self.app = app

    async def startup(self, sockets=None):
        await super().startup(sockets)
        if self.started:  # the port actually bound, which is the one to look for in the logs
            self.app.listening(self.servers[0].sockets[0].getsockname()[1])

    def handle_exit(self, sig, frame):
        if not self.should_exit:  # only the first signal starts the drain; the others hurry it
            self.app.draining(signal.Signals(sig).name)
        super().handle_exit(sig, frame)


def main():
    service_log.configure()
    settings = Settings()
    plane = DataPlane(settings)
    server = None
    health = Health(plane.ready, lambda: server is not None and server.should_exit, settings.health_stall_s)
    app = App(plane, health)
    # log_config=None: uvicorn's own warnings and errors go through our one handler, in our format;
    # its access log stays off (a line per request costs CPU the replica needs).
    config = uvicorn.Config(app, host=settings.host, port=settings.port, loop="uvloop", http="httptools",
                            lifespan="on", log_config=None, access_log=False, log_level="warning", backlog=2048,
                            timeout_keep_alive=30, timeout_graceful_shutdown=settings.drain_timeout_s)
    server = Server(config, app)
    health.serve(settings.host, settings.health_port)
    server.run()
    if not server.started:
        sys.exit(3)


if __name__ == "__main__":
    main()
