"""Stack revisions: the implementation is swarmml.ops.history; deploy records through these names."""
from swarmml.ops.history import (HISTORY_LABEL, KEEP, REVISION_LABEL, decode, encode, forget,  # noqa: F401
                                 load_revision, record_revision, revisions)


def record(client, desired):
    """Record a DesiredStack after a deploy that changed something; returns the revision number."""
    return record_revision(client, desired.namespace, desired)
