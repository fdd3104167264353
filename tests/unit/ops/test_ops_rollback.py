"""What a stack rollback would change, and the secrets it needs: pure, no daemon."""
from ops_helpers import spec
from swarmml.ops.rollback import missing_secrets, stack_changes


def test_stack_changes_between_running_specs_and_a_revision():
    now = {"ml_p": spec(3), "ml_new": spec(1, name="ml_new")}
    older = spec(2)
    older["TaskTemplate"]["ContainerSpec"]["Image"] = "r/p:1@sha256:00"
    older["TaskTemplate"]["ContainerSpec"]["Env"] = ["A=1"]
    changes = stack_changes(now, {"ml_p": older, "ml_old": spec(1, name="ml_old")})
    assert [(c.service, c.field) for c in changes] == [("ml_new", "service"), ("ml_old", "service"),
                                                     ("ml_p", "image"), ("ml_p", "replicas"), ("ml_p", "env")]
    assert changes[0].new == "removed" and changes[1].new == "created"
    assert changes[4].old == ["B=2"] and changes[4].new == []
    assert missing_secrets({"secrets": {"a": {}, "b": {}}}, {"a"}) == ["b"]
