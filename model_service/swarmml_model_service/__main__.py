"""Run the server: one process, uvloop + httptools, graceful drain on SIGTERM."""
import os
import sys

# One BLAS thread: replicas are how this service scales, and oversubscribed
# BLAS threads in a CPU-limited container only add latency.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import uvicorn  # noqa: E402

from swarmml_model_service.app import App  # noqa: E402
from swarmml_model_service.config import Settings  # noqa: E402
from swarmml_model_service.health import Health  # noqa: E402


def main():
    settings = Settings()
    server = None
    health = Health(lambda: app.ready, lambda: server is not None and server.should_exit, settings.health_stall_s)
    app = App(settings, health)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, loop="uvloop", http="httptools",
                            lifespan="on", access_log=False, log_level="warning", backlog=2048,
                            timeout_keep_alive=30, timeout_graceful_shutdown=settings.drain_timeout_s)
    server = uvicorn.Server(config)
    health.serve(settings.host, settings.health_port)
    server.run()
    if not server.started:
        sys.exit(3)


if __name__ == "__main__":
    main()
