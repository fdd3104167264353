"""Health answered ahead of the request queue: its own port, served by its own thread.

Predictions run on the event loop, so a health request on the serving port is
answered only after every request read before it. Under load that took more
than a second: the gateway's check (1 s) took every replica out of service at
once, and the gateway answered 503 "no server available"; Docker's (2 s, 3
retries) marked replicas unhealthy and Swarm stopped them. Overload is the
gateway's to spread, not a reason to take a serving replica away, so these
checks read the server's state from a thread instead of waiting their turn:

- ready: the models are loaded, the server is not draining (SIGTERM), and
  the loop has turned within `stall_s` (a loop stuck in one call is not
  serving, however busy a serving loop may be);
- live: the loop has turned within `stall_s`.
"""
import asyncio
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BEAT_S = 0.5


class Health:
    def __init__(self, is_ready, is_draining, stall_s=10.0, clock=time.monotonic):
        self.is_ready, self.is_draining = is_ready, is_draining
        self.stall_s, self.clock = stall_s, clock
        self.last_turn = None  # until the loop beats: loading the models is not a stall

    def stalled_s(self):
        """Seconds since the loop last turned, when that is more than stall_s; else 0."""
        if self.last_turn is None:
            return 0.0
        idle = self.clock() - self.last_turn
        return idle if idle > self.stall_s else 0.0

    def answer(self, path):
        """(status, JSON body) for a path of the health port."""
        stalled = self.stalled_s()
        if path == "/v2/health/live":
            return (503, b'{"live":false,"stalled_s":%.1f}' % stalled) if stalled else (200, b'{"live":true}')
        if path != "/v2/health/ready":
            return 404, b'{"error":"the health port answers /v2/health/ready and /v2/health/live"}'
        if not self.is_ready():
            return 503, b'{"ready":false}'
        if self.is_draining():
            return 503, b'{"ready":false,"draining":true}'
        if stalled:
            return 503, b'{"ready":false,"stalled_s":%.1f}' % stalled
        return 200, b'{"ready":true}'

    async def beat(self):
        """Run on the loop: each turn it gets is a sign of life."""
        while True:
            self.last_turn = self.clock()
            await asyncio.sleep(BEAT_S)

    def serve(self, host, port):
        """Start answering on host:port in a daemon thread; returns the server (its port, shutdown())."""
        health = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                code, body = health.answer(self.path.rstrip("/"))
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # a check every second or two is not news
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                # Checkers hang up once they have the status line (HAProxy resets): no traceback every second.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        server = Server((host, port), Handler)
        threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
        return server
