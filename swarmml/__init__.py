"""swarmml: deploy scikit-learn inference services on Docker Swarm and prove that they scale."""

__version__ = "0.1.0"
