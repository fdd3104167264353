"""Stack revisions kept in the cluster, so a whole stack can be rolled back (docker/cli can't).

After each deploy that changes something, swarmml.ops.deploy calls
record_revision(); the desired stack (the converted specs, images pinned by
digest) is stored as a Swarm config named `<stack>_swarmml-history_<n>`,
labelled io.swarmml.history=<stack> and io.swarmml.revision=<n>. Configs live
in the managers' Raft store, so the history survives this machine and is
shared by everyone who deploys to the swarm. Secret data is never stored,
only secret names. The newest KEEP revisions are kept.
"""
import base64
import json
import zlib
from dataclasses import dataclass, field

from swarmml.engine import configs
from swarmml.errors import NotFound, SwarmmlError

HISTORY_LABEL = "io.swarmml.history"
REVISION_LABEL = "io.swarmml.revision"
KEEP = 10
# Swarm refuses config data over 500 KB; a stack's specs are far below that.
MAX_BYTES = 500 * 1024


def encode(desired):
    """Pure: a desired stack (DesiredStack or its plain dict) -> the bytes to store, secret data dropped."""
    d = desired.to_dict() if hasattr(desired, "to_dict") else dict(desired)
    d["secrets"] = {name: {k: v for k, v in spec.items() if k != "Data"}
                    for name, spec in (d.get("secrets") or {}).items()}
    # Compressed: Swarm keeps configs below 500 KB, and specs repeat themselves a lot.
    return zlib.compress(json.dumps(d, sort_keys=True, separators=(",", ":")).encode(), 9)


def decode(data):
    """Pure: stored bytes (as encode writes them) -> the plain dict of the desired stack."""
    return json.loads(zlib.decompress(data))


def next_revision(numbers):
    return max(numbers, default=0) + 1


def to_drop(numbers, keep=KEEP):
    """Pure: which revisions to forget once a new one is added, oldest first."""
    ordered = sorted(numbers)
    return ordered[: max(0, len(ordered) + 1 - keep)]


def _found(client, stack):
    """{revision: (config id, created at)}."""
    out = {}
    for cid, _name, labels, created in configs.labelled_configs(client, f"{HISTORY_LABEL}={stack}"):
        try:
            out[int(labels[REVISION_LABEL])] = (cid, created)
        except (KeyError, ValueError):
            continue  # not one of ours after all
    return out


def record_revision(client, stack, desired):
    """Store `desired` as the stack's next revision; returns its number. Drops revisions beyond KEEP."""
    data = encode(desired)
    if len(data) > MAX_BYTES:
        raise SwarmmlError(f"stack {stack!r} is too large to keep in its history ({len(data)} bytes compressed)")
    found = _found(client, stack)
    n = next_revision(found)
    configs.create_config(client, {"Name": f"{stack}_swarmml-history_{n}", "Data": base64.b64encode(data).decode(),
                                   "Labels": {HISTORY_LABEL: stack, REVISION_LABEL: str(n)}})
    for old in to_drop(found):
        configs.remove_config(client, found[old][0])
    return n


@dataclass
class Revision:
    number: int
    created_at: str
    images: dict = field(default_factory=dict)  # service -> image


def revisions(client, stack):
    """The kept revisions of a stack, oldest first, with each service's image."""
    out = []
    for n, (cid, created) in sorted(_found(client, stack).items()):
        d = decode(configs.config_data(client, cid))
        images = {name: spec["TaskTemplate"]["ContainerSpec"].get("Image", "")
                  for name, spec in (d.get("services") or {}).items()}
        out.append(Revision(n, created, images))
    return out


def load_revision(client, stack, revision=None):
    """(N, desired stack as a plain dict) for revision N, or for the one before the newest when N is None."""
    found = _found(client, stack)
    if not found:
        raise NotFound(f"stack {stack!r} has no recorded revisions (swarmml deploy records one per change)")
    numbers = sorted(found)
    if revision is None:
        if len(numbers) < 2:
            raise NotFound(f"stack {stack!r} has only revision {numbers[0]}; there is nothing to roll back to")
        revision = numbers[-2]
    if revision not in found:
        raise NotFound(f"stack {stack!r} has no revision {revision} (kept: {', '.join(map(str, numbers))})")
    return revision, decode(configs.config_data(client, found[revision][0]))


def forget(client, stack):
    """Remove a stack's history (when the stack itself is removed)."""
    for cid, _created in _found(client, stack).values():
        configs.remove_config(client, cid)
