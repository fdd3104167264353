"""Stack revisions kept in the cluster, so a whole stack can be rolled back (docker/cli can't).

Each successful deploy stores the converted stack as a Swarm config named
`<stack>_swarmml-rev-<N>` labelled io.swarmml.history=<stack> and
io.swarmml.revision=<N>. Secret data is never stored, only secret names.
The newest KEEP revisions are kept.
"""
import json

from swarmml.engine import swarm as engine
from swarmml.errors import NotFound
from swarmml.stack.convert import DesiredStack

HISTORY_LABEL = "io.swarmml.history"
REVISION_LABEL = "io.swarmml.revision"
KEEP = 10


def encode(desired):
    """Pure: DesiredStack -> bytes to store (secret data dropped)."""
    d = desired.to_dict()
    d["secrets"] = {name: {k: v for k, v in spec.items() if k != "Data"} for name, spec in d["secrets"].items()}
    return json.dumps(d, sort_keys=True).encode()


def decode(data):
    d = json.loads(data)
    return DesiredStack(**d)


def revisions(client, namespace):
    """[(revision, config id)] oldest first."""
    found = engine.configs_labelled(client, f"{HISTORY_LABEL}={namespace}")
    return sorted((int(labels[REVISION_LABEL]), cid) for cid, labels in found)


def record(client, desired):
    revs = revisions(client, desired.namespace)
    n = (revs[-1][0] + 1) if revs else 1
    engine.create_raw_config(client, f"{desired.namespace}_swarmml-rev-{n}", encode(desired),
                             {HISTORY_LABEL: desired.namespace, REVISION_LABEL: str(n)})
    for _, cid in revs[: max(0, len(revs) + 1 - KEEP)]:
        engine.remove_config(client, cid)
    return n


def load_revision(client, namespace, revision=None):
    """Revision N, or the one before the newest when N is None. Returns (N, DesiredStack)."""
    revs = revisions(client, namespace)
    if not revs:
        raise NotFound(f"stack {namespace!r} has no recorded revisions (deploy it with swarmml first)")
    if revision is None:
        if len(revs) < 2:
            raise NotFound(f"stack {namespace!r} has only revision {revs[0][0]}; nothing to roll back to")
        revision = revs[-2][0]
    ids = dict(revs)
    if revision not in ids:
        raise NotFound(f"stack {namespace!r} has no revision {revision} (kept: {', '.join(str(r) for r, _ in revs)})")
    return revision, decode(engine.config_data(client, ids[revision]))


def forget(client, namespace):
    for _, cid in revisions(client, namespace):
        engine.remove_config(client, cid)
