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

from swarmml.engine import failover

NO_LEADER = ("rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few "
             "managers are online. Make sure more than half of the managers are online.")
NOT_A_MANAGER = ("This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. "
                 "Please run this command on a manager node or promote the current node to a manager.")


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def serve(path, status, message, seen):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((os.path.basename(path), self.command, self.path))
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

    server = UnixHTTPServer(path, Handler)
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
        adapter = failover.ManagerFailover(paths, timeout=5)
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
    assert adapter.socket.endswith("node2.sock")
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
