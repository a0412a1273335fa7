"""A vote naming a product this process's catalogue does not hold yet (another worker
wrote it, the change feed has not brought it in) is fitted once the product is held,
though no vote came since (service/app/poll_fitter.py)."""

from __future__ import annotations

import time
from pathlib import Path

from reviewrank.service.app.catalogue import Catalogue
from reviewrank.service.app.poll_fitter import PollFitter
from reviewrank.service.domain.values import PollVoteEvent
from reviewrank.service.storage.sqlite.store import SQLiteStore


def test_a_vote_left_out_for_a_product_not_held_is_fitted_once_it_is(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    written = store.apply(
        [
            [
                PollVoteEvent("e1", "q1", "u1", ("a", "b"), "a", 10),
                PollVoteEvent("e2", "q2", "u2", ("a", "c"), "c", 10),
            ]
        ]
    )
    rows = {row.product_id: row for row in written.products}
    catalogue = Catalogue()
    catalogue.apply([rows["a"], rows["b"]], written.seq)  # "c" not brought in yet
    fitter = PollFitter(store.follower(), catalogue)
    try:
        assert fitter.last is not None and 1 == fitter.last.left_out

        catalogue.apply([rows["c"]], written.seq)  # the feed brings "c" in
        deadline = time.monotonic() + 10
        while catalogue.poll_strength[rows["c"].idx] == 1.0 and time.monotonic() < deadline:
            time.sleep(0.01)

        assert catalogue.poll_strength[rows["c"].idx] > 1.0
        assert 0 == fitter.last.left_out
    finally:
        fitter.close()
        store.close()
