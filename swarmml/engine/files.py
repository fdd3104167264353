"""Engine I/O for files inside a task's container: a directory's regular files through the archive API.

The archive API (GET /containers/{id}/archive) reads a container's files,
its volumes included, whether the container runs or has stopped, and needs
nothing inside it (no shell, no cat): the predictor's root is read-only and
may lack both. The answer is plain data: {file name: bytes}.
"""
import os
import tarfile
import tempfile

import docker.errors
import requests

from swarmml.engine import explain
from swarmml.errors import NotFound, SwarmmlError

# Past this much data in one directory, read no more: a terminal can't show it and memory is finite.
MAX_BYTES = 1 << 30


def read_dir(client, container_id: str, directory: str, keep=lambda name: True) -> dict[str, bytes]:
    """The regular files directly in `directory` whose names `keep` accepts; NotFound if the container
    or the directory is gone."""
    try:
        chunks, _stat = client.api.get_archive(container_id, directory)
        with tempfile.TemporaryFile() as spool:
            size = 0
            for chunk in chunks:
                size += len(chunk)
                if size > MAX_BYTES:
                    raise SwarmmlError(f"{directory} in container {container_id[:12]} holds over "
                                       f"{MAX_BYTES >> 20} MiB; read it with docker cp")
                spool.write(chunk)
            spool.seek(0)
            return _members(spool, keep)
    except docker.errors.NotFound:
        raise NotFound(f"container {container_id[:12]} or its {directory} is gone") from None
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"reading {directory} in container {container_id[:12]}: {explain(exc)}") from None
    except (requests.exceptions.RequestException, OSError) as exc:
        raise SwarmmlError(f"reading {directory} in container {container_id[:12]}: {exc}") from None


def _members(fileobj, keep) -> dict[str, bytes]:
    found = {}
    with tarfile.open(fileobj=fileobj, mode="r:") as tar:
        for member in tar:
            parts = member.name.split("/")
            # The archive holds the directory itself as its first path part: only its direct files count.
            if member.isfile() and len(parts) == 2 and keep(parts[1]):
                f = tar.extractfile(member)
                if f is not None:
                    found[os.path.basename(member.name)] = f.read()
    return found
