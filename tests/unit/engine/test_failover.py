"""The client of a local cluster moves to another manager when its own is lost: real unix sockets, no engine.

Each "manager" is an HTTP server on a unix socket of the test's own. What they answer is what
Docker Engine 20.10 answers: a manager without a leader says so in a 500 whose text errors.py
reads as Unavailable; a worker refuses swarm calls with a 503.
"""
import json
import os
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler

import pytest
import requests
import urllib3

from swarmml.engine import failover

NO_LEADER = ("rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few "
             "managers are online. Make sure more than half of the managers are online.")
NOT_A_MANAGER = ("This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. "
                 "Please run this command on a manager node or promote the current node to a manager.")


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def handler(name, seen, status=200, message=None, hang_up=False):
    """An engine's answer to every call: status with {"message"} (an error) or [{"ID": message}];
    hang_up: it reads the call, then closes without answering."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((name, self.command, self.path))
            if hang_up:
                self.close_connection = True
                self.connection.close()
                return
            body = json.dumps({"message": message} if status >= 400 else [{"ID": message}]).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def log_message(self, *args):
            pass

        def address_string(self):
            return "unix"

    return Handler


def serve(path, status, message, seen):
    server = UnixHTTPServer(path, handler(os.path.basename(path), seen, status, message))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def managers(tmp_path):
    seen, servers = [], []

    def make(*answers):
        paths = []
        for i, answer in enumerate(answers):
            path = str(tmp_path / f"node{i + 1}.sock")
            if answer == "gone":
                pass  # no file at all: the node's engine removed its socket when it stopped
            elif answer == "refused":
                s = socket.socket(socket.AF_UNIX)
                s.bind(path)  # a socket file nobody listens on: the engine was killed
                s.close()
            else:
                servers.append(serve(path, answer[0], answer[1], seen))
            paths.append(path)
        session = requests.Session()
        adapter = failover.ManagerFailover(failover.unix_ways(paths, timeout=5))
        session.mount("http+docker://", adapter)
        return session, adapter, seen

    yield make
    for s in servers:
        s.shutdown()
        s.server_close()


def get(session, path="/v1.41/nodes"):
    return session.get(f"http+docker://localhost{path}", timeout=5)


def test_calls_go_to_the_first_manager_while_it_answers(managers):
    session, adapter, seen = managers((200, "n1"), (200, "n2"))
    assert get(session).json() == [{"ID": "n1"}] and get(session).json() == [{"ID": "n1"}]
    assert [s[0] for s in seen] == ["node1.sock", "node1.sock"]


@pytest.mark.parametrize("lost", ["gone", "refused"])
def test_a_lost_manager_is_passed_over_and_the_next_one_keeps_the_calls(managers, lost):
    session, adapter, seen = managers(lost, (200, "n2"), (200, "n3"))
    assert get(session).json() == [{"ID": "n2"}]
    assert adapter.url.endswith("node2.sock")
    assert get(session).json() == [{"ID": "n2"}]
    assert [s[0] for s in seen] == ["node2.sock", "node2.sock"]  # the lost one is not tried again first


def test_a_manager_without_a_leader_hands_the_call_to_one_that_has_it(managers):
    session, adapter, seen = managers((500, NO_LEADER), (503, NOT_A_MANAGER), (200, "n3"))
    r = get(session)
    assert r.status_code == 200 and r.json() == [{"ID": "n3"}]
    assert [s[0] for s in seen] == ["node1.sock", "node2.sock", "node3.sock"]


def test_when_no_manager_can_serve_the_last_answer_is_returned(managers):
    session, adapter, seen = managers((500, NO_LEADER), (500, NO_LEADER))
    r = get(session)
    assert r.status_code == 500 and "does not have a leader" in r.json()["message"]


def test_when_every_manager_is_lost_the_connection_error_is_raised(managers):
    session, adapter, seen = managers("gone", "refused")
    with pytest.raises(requests.exceptions.ConnectionError) as err:
        get(session)
    assert failover.never_sent(err.value)


def test_an_answer_that_is_the_callers_mistake_is_not_sent_elsewhere(managers):
    session, adapter, seen = managers((404, "service x not found"), (200, "n2"))
    assert get(session).status_code == 404 and len(seen) == 1


def test_a_connection_lost_after_sending_is_not_resent():
    # A reset mid-answer may follow a call that happened: errors.py's policy decides, not the failover.
    reset = requests.exceptions.ConnectionError(ConnectionResetError(104, "Connection reset by peer"))
    assert not failover.never_sent(reset)
    assert failover.never_sent(requests.exceptions.ConnectionError(FileNotFoundError(2, "No such file")))


@pytest.mark.parametrize("status, text, moves", [
    (500, NO_LEADER, True),
    (503, NOT_A_MANAGER, True),
    (500, "rpc error: code = DeadlineExceeded desc = context deadline exceeded", True),
    (500, "invalid mount config", False),
    (404, "no such service", False),
])
def test_which_answers_send_a_call_to_another_manager(status, text, moves):
    assert failover.another_may_answer(status, text) is moves


# --- remote managers over TCP: each way has its own address, and the request is rebased to it ---

class TCPHTTPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def tcp_manager(seen, name, hang_up=False):
    """An engine on 127.0.0.1:<free port>; hang_up: it reads the call, then closes without answering."""
    server = TCPHTTPServer(("127.0.0.1", 0), handler(name, seen, 200, name, hang_up))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens: the connection is refused, as a lost machine's published port is
    return f"http://127.0.0.1:{port}"


def remote_session(bases):
    session = requests.Session()
    ways = [failover.Way(b, requests.adapters.HTTPAdapter, b) for b in bases]
    adapter = failover.ManagerFailover(ways, base=bases[0])
    session.mount(bases[0], adapter)
    return session, adapter


def test_a_refused_remote_manager_is_passed_over_and_the_call_rebased():
    seen = []
    server, up = tcp_manager(seen, "m2")
    lost = closed_port()
    session, adapter = remote_session([lost, up])
    try:
        r = session.get(f"{lost}/v1.41/nodes?filters=x", timeout=5)
        assert r.json() == [{"ID": "m2"}] and seen == [("m2", "GET", "/v1.41/nodes?filters=x")]
        assert adapter.url == up
    finally:
        server.shutdown()
        server.server_close()


def test_a_get_whose_connection_broke_moves_on_but_a_post_does_not():
    seen = []
    s1, hangs = tcp_manager(seen, "m1", hang_up=True)
    s2, up = tcp_manager(seen, "m2")
    session, _ = remote_session([hangs, up])
    try:
        assert session.get(f"{hangs}/v1.41/services", timeout=5).json() == [{"ID": "m2"}]
        seen.clear()
        session2, _ = remote_session([hangs, up])
        with pytest.raises(requests.exceptions.ConnectionError):
            session2.post(f"{hangs}/v1.41/services/create", data=b"{}", timeout=5)
        assert [s[0] for s in seen] == ["m1"]  # sent once: it may have happened
    finally:
        for s in (s1, s2):
            s.shutdown()
            s.server_close()


def test_a_silent_manager_is_given_up_after_the_connect_timeout():
    assert failover._short_connect(120) == (failover.CONNECT_TIMEOUT_S, 120)
    assert failover._short_connect((1, 60)) == (1, 60)
    assert failover._short_connect(None) == (failover.CONNECT_TIMEOUT_S, None)


def test_a_tls_failure_is_shown_not_passed_over():
    # ssl.SSLError carries a str `reason`; the walk over causes must skip it, and a refused certificate is
    # the user's to fix (the same material fails at every manager), so the failover does not hide it.
    import ssl
    inner = ssl.SSLError(1, "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate")
    inner.reason = "SSLV3_ALERT_BAD_CERTIFICATE"
    err = requests.exceptions.SSLError(urllib3.exceptions.MaxRetryError(None, "/version", reason=inner))
    assert not failover.never_sent(err)

    class Refuses(requests.adapters.BaseAdapter):
        def send(self, request, **kwargs):
            raise err

    seen = []
    server, up = tcp_manager(seen, "m2")
    session = requests.Session()
    ways = [failover.Way("https://a", Refuses, "https://a"), failover.Way(up, requests.adapters.HTTPAdapter, up)]
    session.mount("https://a", failover.ManagerFailover(ways, base="https://a"))
    try:
        with pytest.raises(requests.exceptions.SSLError):
            session.get("https://a/version", timeout=5)
        assert seen == []
    finally:
        server.shutdown()
        server.server_close()
