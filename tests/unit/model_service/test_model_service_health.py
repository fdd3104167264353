"""What the health port answers, as a function of the server's state and the loop's last turn (no server)."""
import json

from swarmml_model_service.health import Health


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def health(ready=True, draining=False, stall_s=10.0):
    clock = Clock()
    state = {"ready": ready, "draining": draining}
    return Health(lambda: state["ready"], lambda: state["draining"], stall_s, clock), clock, state


def answer(h, path="/v2/health/ready"):
    code, body = h.answer(path)
    return code, json.loads(body)


def test_ready_once_loaded_and_not_while_draining():
    h, _, state = health(ready=False)
    assert answer(h) == (503, {"ready": False})
    state["ready"] = True
    assert answer(h) == (200, {"ready": True})
    state["draining"] = True
    assert answer(h) == (503, {"ready": False, "draining": True})


def test_a_loop_that_stopped_turning_is_neither_ready_nor_live():
    h, clock, _ = health(stall_s=10.0)
    assert answer(h) == (200, {"ready": True}), "before the first beat (models loading) is no stall"
    h.last_turn = clock.t
    clock.t += 9.5  # a busy loop, still within the limit
    assert answer(h) == (200, {"ready": True})
    assert answer(h, "/v2/health/live") == (200, {"live": True})
    clock.t += 1.5
    assert answer(h) == (503, {"ready": False, "stalled_s": 11.0})
    assert answer(h, "/v2/health/live") == (503, {"live": False, "stalled_s": 11.0})


def test_other_paths_are_not_found():
    h, _, _ = health()
    assert h.answer("/v2/models/iris-rf/infer")[0] == 404
