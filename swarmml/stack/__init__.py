"""Stacks: load compose stack files, convert them to Swarm specs, plan a deploy, generate files from Python."""
from swarmml.stack.convert import DesiredStack, convert
from swarmml.stack.loader import LoadedStack, load

__all__ = ["DesiredStack", "LoadedStack", "convert", "load"]
