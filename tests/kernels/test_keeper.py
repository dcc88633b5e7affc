"""The daemon's view of an output keeper's numbers: duplicates, gaps, resume topics."""

from __future__ import annotations

from jkctl.kernels.keeper import LIVE, Numbering


def tag(keeper: str, n: int) -> bytes:
    return f"jkctl-seq:{keeper}:{n}".encode()


def test_before_any_number_it_resumes_live_and_a_live_sync_sets_the_start() -> None:
    numbering = Numbering()
    assert numbering.resume_topic() == LIVE
    assert numbering.sync(tag("k1", 40), LIVE)
    assert numbering.lost == 0  # "from now": what came before was not asked for
    assert numbering.resume_topic() == b"jkctl-resume:k1:40"


def test_duplicates_are_dropped_and_gaps_counted() -> None:
    numbering = Numbering()
    numbering.sync(tag("k1", 0), LIVE)
    assert [numbering.message(tag("k1", n)) for n in (1, 2, 2, 1, 3)] == [
        True,
        True,
        False,
        False,
        True,
    ]
    assert numbering.lost == 0
    assert numbering.message(tag("k1", 7))
    assert numbering.lost == 3
    assert numbering.resume_topic() == b"jkctl-resume:k1:7"


def test_a_sync_for_another_topic_says_nothing() -> None:
    numbering = Numbering()
    numbering.sync(tag("k1", 5), LIVE)
    numbering.topic = numbering.resume_topic()
    assert not numbering.sync(tag("k1", 9), LIVE)  # a stale answer
    assert (numbering.last, numbering.lost) == (5, 0)


def test_a_resumed_sync_past_what_came_is_a_loss() -> None:
    numbering = Numbering()
    numbering.sync(tag("k1", 5), LIVE)
    numbering.topic = numbering.resume_topic()
    assert numbering.sync(tag("k1", 8), numbering.topic)  # 6..8 dropped from the ring
    assert (numbering.last, numbering.lost) == (8, 3)


def test_a_new_keeper_on_resume_is_a_loss_of_unknown_size() -> None:
    numbering = Numbering()
    numbering.sync(tag("k1", 5), LIVE)
    numbering.topic = numbering.resume_topic()
    assert numbering.sync(tag("k2", 2), numbering.topic)
    assert numbering.lost >= 1
    assert numbering.resume_topic() == b"jkctl-resume:k2:2"
