"""Proving that a service scales: checks, a scaling curve, a failure drill and a report."""
from swarmml.verify.run import verify

__all__ = ["verify"]
