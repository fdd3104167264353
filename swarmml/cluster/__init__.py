"""Clusters: the swarms swarmml makes and the machines they run on.

- local.py: a swarm of Docker-in-Docker nodes on this machine (create, list, remove, start, connect);
- ssh.py: a swarm of your own machines reached over SSH; hosts.py: what those hosts have and need;
- bootstrap.py: a Docker engine where none answers; doctor.py: what is wrong with a cluster, one line each;
- images.py: the node, gateway, registry and Prometheus images, built from a debootstrap base;
- registry.py: the cluster's registry (plain, or with a login over TLS); certs.py: its CA and certificates;
- expose.py: the engine endpoint (TCP with TLS, or SSH) and its Docker context; change.py: changes in place.
"""
