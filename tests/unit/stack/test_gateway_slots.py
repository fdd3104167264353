"""The gateway's server-template slots as a limit on replicas, read from HAProxy configs (pure)."""
import os

import paths
from swarmml.stack import gateway_slots

SHIPPED = os.path.join(paths.ROOT, "swarmml", "data", "gateway", "haproxy.cfg")


def test_the_shipped_gateway_routes_to_128_predictors():
    with open(SHIPPED) as f:
        assert gateway_slots.slots(f.read()) == {"predictor": 128}


def test_ranges_sections_and_comments():
    text = """
global
    maxconn 10
defaults
    mode http
frontend inference
    # server-template x 99 tasks.frontend-only:8080 is not a server line here
    default_backend a
backend a
    server-template replica 1-20 tasks.predictor:8080 check
    server-template more 4 tasks.predictor:8080
    # server-template off 100 tasks.predictor:8080
backend b
    server-template replica 8 tasks.predictor
    server-template canary 2 tasks.predictor-canary:8080
listen stats
    bind :8404
"""
    # 24 in backend a, 8 in backend b: a replica beyond 8 gets none of b's requests
    assert gateway_slots.slots(text) == {"predictor": 8, "predictor-canary": 2}


def test_the_example_stacks_templates():
    def read(*p):
        with open(os.path.join(paths.ROOT, "stacks", *p)) as f:
            return gateway_slots.slots(f.read())
    assert read("canary", "haproxy.cfg") == {"predictor": 32, "predictor-canary": 8}
    assert read("two-models", "haproxy.cfg") == {"predictor-logreg": 16, "predictor-rf": 16}


def _spec(name, replicas=None, configs=(), aliases=()):
    spec = {"Name": name, "TaskTemplate": {"ContainerSpec": {"Configs": [{"ConfigName": c} for c in configs]},
                                           "Networks": [{"Target": "net", "Aliases": list(aliases)}]}}
    if replicas is not None:
        spec["Mode"] = {"Replicated": {"Replicas": replicas}}
    return spec


CFG = b"backend predictor\n    server-template replica 4 tasks.predictor:8080\n"


def test_limits_follow_the_stacks_aliases():
    services = {"ml_predictor": _spec("ml_predictor", 2, aliases=["predictor"]),
                "ml_gateway": _spec("ml_gateway", configs=["ml_haproxy_cfg"], aliases=["gateway"]),
                "ml_other": _spec("ml_other", 9, aliases=["other"])}
    limits = gateway_slots.limits(services, {"ml_haproxy_cfg": CFG})
    assert set(limits) == {"ml_predictor"} and limits["ml_predictor"][0] == 4
    where = limits["ml_predictor"][1]
    assert "ml_gateway" in where and "server-template ... 4 tasks.predictor" in where
    assert gateway_slots.problem("ml_predictor", 4, limits["ml_predictor"]) is None
    line = gateway_slots.problem("ml_predictor", 5, limits["ml_predictor"])
    assert line.startswith("service ml_predictor: 5 replicas, but the gateway ml_gateway's HAProxy config")
    assert "routes to at most 4" in line and "raise that count in the gateway's haproxy.cfg" in line
    assert "\n" not in line
    assert gateway_slots.problem("ml_other", 1000, limits.get("ml_other")) is None  # no gateway names it


def test_a_stack_asking_more_than_its_gateway_routes_to():
    services = {"ml_predictor": _spec("ml_predictor", 6, aliases=["predictor"]),
                "ml_gateway": _spec("ml_gateway", configs=["ml_haproxy_cfg"], aliases=["gateway"])}
    problems = gateway_slots.stack_problems(services, {"ml_haproxy_cfg": CFG}, {"ml_predictor": 3})
    assert problems == [gateway_slots.problem("ml_predictor", 6, gateway_slots.limits(
        services, {"ml_haproxy_cfg": CFG})["ml_predictor"])]
    services["ml_predictor"]["Mode"]["Replicated"]["Replicas"] = 2
    (line,) = gateway_slots.stack_problems(services, {"ml_haproxy_cfg": CFG}, {"ml_predictor": 10})
    assert "10 replicas at the autoscaler's max" in line
    assert gateway_slots.stack_problems(services, {"ml_haproxy_cfg": CFG}, {"ml_predictor": 4}) == []
