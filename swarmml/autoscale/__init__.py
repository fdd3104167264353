"""Autoscaling for replicated services: replicas follow the load, measured as requests in flight per replica.

- the policy (io.swarmml.autoscale.* labels -> Policy) lives in swarmml.stack.autoscale_policy, where the
  deploy that checks it can reach it; it is re-exported here;
- signals.py: the model service's /metrics text -> per-replica load (pure);
- decide.py: observations + policy -> a replica count and its reason (pure);
- controller.py: the loop that reads the swarm, scrapes the replicas and scales (I/O);
- lease.py: one controller per swarm, through a Swarm config used as a lease (I/O).
"""
from swarmml.autoscale.decide import Decision, Observation, State, decide
from swarmml.stack.autoscale_policy import PREFIX, Policy, check_services, has_policy, parse
from swarmml.autoscale.signals import (
           ReplicaSignal,
           Scrape,
           Signal,
           read_scrape,
           replica_signal,
)

__all__ = [
           "PREFIX",
           "Decision",
           "Observation",
           "Policy",
           "ReplicaSignal",
           "Scrape",
           "Signal",
           "State",
           "check_services",
           "decide",
           "has_policy",
           "parse",
           "read_scrape",
           "replica_signal",
]
