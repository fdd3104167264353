"""Stacks: load compose stack files, convert them to Swarm specs, plan a deploy, generate files from Python.

    from swarmml.stack import convert, load
    from swarmml.stack.plan import plan

    loaded = load(["docker-stack.yml"], name=None, environ=None, env_file=None)
    desired = convert(loaded)          # DesiredStack of Engine API specs
    the_plan = plan(desired, current)  # current: read from the engine by the deploy

`swarmml.stack.plan` is the module; the package does not rebind the name to its function.
"""
from swarmml.stack.convert import DesiredStack, convert, logical_name
from swarmml.stack.loader import LoadedStack, load
from swarmml.stack.plan import Plan

__all__ = ["DesiredStack", "LoadedStack", "Plan", "convert", "load", "logical_name"]
