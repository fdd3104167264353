"""Stack history's storage rules: what a revision stores and which revisions are kept. Pure, no daemon."""
import zlib

from ops_helpers import spec
from swarmml.ops import history


def test_history_stores_no_secret_data_and_reads_back():
    desired = {"namespace": "ml", "services": {"ml_p": spec(2)}, "secrets": {"ml_key": {"Name": "ml_key",
                                                                                        "Data": "c2VjcmV0"}}}
    data = history.encode(desired)
    assert b"c2VjcmV0" not in zlib.decompress(data)
    back = history.decode(data)
    assert back["secrets"] == {"ml_key": {"Name": "ml_key"}} and back["services"]["ml_p"] == spec(2)


def test_history_keeps_the_newest_revisions():
    assert history.next_revision([]) == 1 and history.next_revision([3, 7]) == 8
    assert history.to_drop(range(1, 10)) == []
    assert history.to_drop(range(1, 11)) == [1]
    assert history.to_drop([5, 2, 9, 3, 4, 6, 7, 8, 10, 11, 12]) == [2, 3]
