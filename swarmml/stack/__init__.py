"""Stacks: load compose stack files, convert them to Swarm specs, plan a deploy, generate files from Python.

    loaded = load(["docker-stack.yml"], name=None, environ=None, env_file=None)
    desired = convert(loaded)          # DesiredStack of Engine API specs
    the_plan = plan(desired, current)  # current: read from the engine by the deploy
"""
from swarmml.stack.convert import DesiredStack, convert, logical_name
from swarmml.stack.loader import LoadedStack, load
from swarmml.stack.plan import Plan, render_plan
from swarmml.stack.plan import plan as plan  # noqa: E402  (the function; the module stays importable)

__all__ = ["DesiredStack", "LoadedStack", "Plan", "convert", "load", "logical_name", "plan", "render_plan"]
