"""How deploy treats the engine's refusals: by their kind, never all as one (pure, with a stand-in engine)."""
import pytest

from swarmml.ops import deploy
from swarmml.engine import errors


class Engine:
    """engine remove_* stand-ins that raise, per object, the errors listed for it (in order), then succeed."""

    def __init__(self, failures):
        self.failures = {k: list(v) for k, v in failures.items()}
        self.removed = []

    def remove(self, client, ident):
        queue = self.failures.get(ident) or []
        if queue:
            raise queue.pop(0)
        self.removed.append(ident)


@pytest.fixture
def no_sleep(monkeypatch):
    monkeypatch.setattr(deploy.time, "sleep", lambda s: None)


def test_only_a_network_in_use_is_waited_for_and_other_refusals_are_reported(monkeypatch, no_sleep):
    fake = Engine({"n-busy": [errors.InUse("removing network n-busy: in use by task t1")],
                   "n-odd": [errors.EngineError("removing network n-odd: permission denied", 403)],
                   "n-gone": [errors.NotFound("removing network n-gone: not found", 404)]})
    monkeypatch.setattr(deploy.engine_networks, "remove_network", fake.remove)
    nets = {name: {"ID": f"n-{name}"} for name in ("busy", "odd", "gone", "free")}
    in_use, refused = deploy._remove_networks(None, nets, timeout=5)
    assert in_use == [] and fake.removed == ["n-free", "n-busy"]  # busy went on the second try
    assert refused == {"odd": "removing network n-odd: permission denied"}


def test_a_network_still_in_use_at_the_timeout_is_kept_not_failed(monkeypatch, no_sleep):
    fake = Engine({"n-busy": [errors.InUse("in use")] * 100})
    monkeypatch.setattr(deploy.engine_networks, "remove_network", fake.remove)
    assert deploy._remove_networks(None, {"busy": {"ID": "n-busy"}}, timeout=0) == (["busy"], {})


def test_undo_counts_what_is_gone_and_reports_what_it_could_not_remove():
    fake = Engine({"s2": [errors.NotFound("removing service s2: not found", 404)],
                   "c1": [errors.Unavailable("removing config c1: the engine did not answer")]})
    undone, left = deploy._undo(None, [(fake.remove, "c1"), (fake.remove, "s1"), (fake.remove, "s2")])
    assert undone == 2 and left == ["removing config c1: the engine did not answer"]
