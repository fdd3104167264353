"""A 3 MB image (sh, sleep and libc copied from this machine) for tests that only need tasks to run or fail.

Rollout tests care about task states, not about what runs: building and pushing the predictor
for them would cost minutes on a 2-core machine.
"""
import os
import shutil
import tempfile

REF = "swarmml/tiny:1"
PROGRAMS = ("/bin/sh", "/bin/sleep")
LIBS = ("/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")


def build_and_push(host_client, cluster):
    """Build REF on the host engine and push it to the cluster's registry; returns the ref its nodes pull."""
    from swarmml.build import predictor as builds

    return builds.push_to_cluster(host_client, {"tiny": build(host_client)}, cluster)["tiny"]


def build(host_client):
    """Build REF on the host engine; returns it."""
    from swarmml.engine import images

    with tempfile.TemporaryDirectory() as ctx:
        root = os.path.join(ctx, "rootfs")
        for path in PROGRAMS + LIBS:
            dest = os.path.join(root, path.lstrip("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copy(os.path.realpath(path), dest)
        os.makedirs(os.path.join(root, "lib64"), exist_ok=True)
        os.symlink("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", os.path.join(root, "lib64/ld-linux-x86-64.so.2"))
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write('FROM scratch\nCOPY rootfs/ /\nCMD ["/bin/sleep", "infinity"]\n')
        images.build_image(host_client, ctx, REF)
    return REF
