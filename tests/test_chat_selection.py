"""The chat selection policy with plain numbers: moderation, priority, fairness, bounds."""

import random
import tracemalloc

import pytest

from broadcaster.backoff import Backoff
from broadcaster.chat.message import ChatMessage
from broadcaster.chat.sanitize import clean_text, dedup_key
from broadcaster.chat.selection import Accepted, ChatSelector, Refused, SelectionConfig


def m(user, text, t=0.0, **flags):
    return ChatMessage(platform="test", user=user, text=text, time=t, **flags)


def test_clean_text_strips_control_and_invisible_characters():
    raw = "he\u200bllo\u202e dlrow\u202c\x07 \u2066x\u2069\ufeff\n\tthere\U000e0041"
    assert clean_text(raw) == "hello dlrow x there"
    assert clean_text("caf\u0065\u0301") == "caf\u00e9"  # NFC
    assert dedup_key("HIIIIII there!!!") == dedup_key("hii   there")


def test_length_caps_and_empty():
    sel = ChatSelector(SelectionConfig(max_chars=10, max_user_chars=5))
    assert sel.offer(m("a", "\u200b \x00"), 0) == Refused("empty")
    assert sel.offer(m("a", "x" * 11), 0) == Refused("too_long")
    ok = sel.offer(m("averylongname", "x" * 10), 0)
    assert isinstance(ok, Accepted) and ok.message.user == "avery"
    assert sel.drops() == {"empty": 1, "too_long": 1}


def test_blocklists_are_case_insensitive_whole_words_and_see_through_invisibles():
    sel = ChatSelector(SelectionConfig(blocked_words=("spam", "buy now"),
                                       blocked_users=("BadGuy",)))
    assert sel.offer(m("badguy", "hello"), 0) == Refused("blocked_user")
    assert sel.offer(m("u1", "this is SPAM!"), 0) == Refused("blocked_word")
    assert sel.offer(m("u2", "s\u200bpam here"), 0) == Refused("blocked_word")
    assert sel.offer(m("u3", "please BUY   now"), 0) == Refused("blocked_word")
    # word boundaries: "spammer" and "buy nowhere" are not the blocked words
    assert isinstance(sel.offer(m("u4", "the spammer left"), 0), Accepted)
    assert isinstance(sel.offer(m("u5", "buy nowhere"), 0), Accepted)


def test_per_user_rate_limit_with_window_and_exemptions():
    sel = ChatSelector(SelectionConfig(user_max_messages=2, user_window_s=10,
                                       max_per_user_queued=10))
    assert isinstance(sel.offer(m("a", "one"), 0), Accepted)
    assert isinstance(sel.offer(m("a", "two"), 1), Accepted)
    assert sel.offer(m("a", "three"), 2) == Refused("rate_limited")
    assert isinstance(sel.offer(m("a", "four"), 10.5), Accepted)  # first one left the window
    assert isinstance(sel.offer(m("a", "mod talk", moderator=True), 11), Accepted)
    assert isinstance(sel.offer(m("a", "paid talk", paid_amount=2, currency="USD"), 11), Accepted)


def test_near_duplicates_are_refused_within_the_window():
    sel = ChatSelector(SelectionConfig(dedup_window_s=30, user_max_messages=100,
                                       max_per_user_queued=100))
    assert isinstance(sel.offer(m("a", "What's your name?"), 0), Accepted)
    assert sel.offer(m("b", "whats   your NAME???"), 1) == Refused("duplicate")
    assert sel.offer(m("a", "What's your nam?"), 2) == Refused("duplicate")  # similar, same user
    assert isinstance(sel.offer(m("c", "whats your name"), 31), Accepted)  # window passed
    assert isinstance(sel.offer(m("a", "Where do you live?"), 32), Accepted)


def test_priority_paid_then_moderator_then_fair_round_robin():
    sel = ChatSelector(SelectionConfig(user_max_messages=100, max_per_user_queued=100))
    for i, word in enumerate(["apples", "bananas", "cherries", "dates", "elderberries"]):
        assert isinstance(sel.offer(m("loud", f"who likes {word}"), i * 0.1), Accepted)
    sel.offer(m("quiet", "a question"), 1)
    sel.offer(m("mod", "mod note", moderator=True), 2)
    sel.offer(m("fan", "take my money", paid_amount=5, currency="USD"), 3)
    order = [sel.pick(4 + i).user for i in range(8)]
    assert order[:2] == ["fan", "mod"]
    # loud came first, quiet never answered: loud once, then quiet, then loud again.
    assert order[2:5] == ["loud", "quiet", "loud"]
    assert order[5:] == ["loud", "loud", "loud"]
    assert sel.pick(20) is None


def test_least_recently_answered_wins_across_rounds():
    sel = ChatSelector(SelectionConfig(user_max_messages=100, max_per_user_queued=100))
    sel.offer(m("a", "first from a"), 0)
    assert sel.pick(1).user == "a"
    sel.offer(m("a", "second from a"), 2)
    sel.offer(m("b", "first from b"), 3)  # later, but b was never answered
    assert sel.pick(4).user == "b"
    assert sel.pick(5).user == "a"


def test_queue_bound_eviction_and_expiry():
    sel = ChatSelector(SelectionConfig(max_queue=3, max_age_s=10, user_max_messages=100))
    for i in range(3):
        sel.offer(m(f"u{i}", f"msg number {i}"), i)
    assert isinstance(sel.offer(m("u3", "msg number 3"), 3), Accepted)
    assert sel.counters["evicted"] == 1 and sel.pending() == 3
    # a normal message cannot push out a queue full of paid ones
    paid = ChatSelector(SelectionConfig(max_queue=2))
    paid.offer(m("p1", "paid one", paid_amount=1, currency="USD"), 0)
    paid.offer(m("p2", "paid two", paid_amount=1, currency="USD"), 0)
    assert paid.offer(m("n", "normal"), 0) == Refused("queue_full")
    # expiry: u1..u3 arrived at 1..3; at t=12.5 only u3 (age 9.5) is left
    assert sel.pick(12.5).user == "u3"
    assert sel.counters["expired"] == 2
    assert sel.pick(12.5) is None


def test_per_user_backlog():
    sel = ChatSelector(SelectionConfig(max_per_user_queued=2, user_max_messages=100))
    sel.offer(m("a", "one"), 0)
    sel.offer(m("a", "two"), 0)
    assert sel.offer(m("a", "three"), 0) == Refused("user_backlog")


def test_config_from_dict_errors_name_the_key():
    with pytest.raises(ValueError, match="chat.selection: unknown key.*max_char"):
        SelectionConfig.from_dict({"max_char": 3})
    with pytest.raises(ValueError, match="chat.selection.blocked_words"):
        SelectionConfig.from_dict({"blocked_words": "spam"})
    with pytest.raises(ValueError, match="chat.selection.max_age_s"):
        SelectionConfig.from_dict({"max_age_s": "long"})
    cfg = SelectionConfig.from_dict({"blocked_words": ["x"], "max_queue": 5, "max_age_s": 3})
    assert cfg.blocked_words == ("x",) and cfg.max_queue == 5 and cfg.max_age_s == 3.0


def _flood(sel, count, rng, picks, on_step=None):
    for i in range(count):
        now = i * 0.00025  # 4000 messages a second
        if i % 3 == 0:
            msg = m("spammer", f"spam wave {rng.random()}")
        else:
            msg = m(f"viewer{rng.randrange(20_000)}", f"question {i} about {rng.random()}")
        sel.offer(msg, now)
        if i % 500 == 499:  # the anchor picks 8 times a second of flood
            got = sel.pick(now)
            assert got is not None
            picks.append(got.user)
        if on_step:
            on_step(i)


def test_flood_anchor_keeps_getting_picks_and_state_stays_bounded():
    """40k messages (a loud spammer sends a third of them, the rest from 20k viewers)."""
    cfg = SelectionConfig()
    sel = ChatSelector(cfg)
    picks = []
    _flood(sel, 40_000, random.Random(1), picks)
    sizes = sel.state_sizes()
    assert sizes["queue"] <= cfg.max_queue
    assert sizes["rate_users"] <= cfg.tracked_users and sizes["answered"] <= cfg.tracked_users
    assert sizes["line_users"] <= cfg.tracked_users
    assert sizes["recent_keys"] <= cfg.dedup_memory and sizes["key_counts"] <= cfg.dedup_memory
    assert len(picks) == 80
    assert picks.count("spammer") <= 4
    assert all(not (a == b == "spammer") for a, b in zip(picks, picks[1:]))
    assert sel.counters["rate_limited"] > 10_000


def test_flood_memory_stops_growing_once_bounds_are_reached():
    """With small bounds, traced memory after 6k messages is no larger than after 2k."""
    sel = ChatSelector(SelectionConfig(tracked_users=300, dedup_memory=300, max_queue=50))
    marks = {}
    tracemalloc.start()
    try:
        _flood(sel, 6_000, random.Random(2), [],
               lambda i: marks.setdefault(i, tracemalloc.get_traced_memory()[0])
               if i in (1_999, 5_999) else None)
    finally:
        tracemalloc.stop()
    assert marks[5_999] < marks[1_999] * 1.1 + 64 * 1024, marks


def test_backoff_sequence_grows_with_jitter_and_caps():
    b = Backoff(initial_s=2, factor=1.5, max_s=10, jitter=0.2, rng=random.Random(0))
    delays = [b.next_delay() for _ in range(8)]
    nominal = [2, 3, 4.5, 6.75, 10, 10, 10, 10]
    for d, n in zip(delays, nominal):
        assert n * 0.8 - 1e-9 <= d <= min(10, n * 1.2) + 1e-9
    assert len(set(delays)) > 4  # jittered, not constant
    b.reset()
    assert 1.6 <= b.next_delay() <= 2.4
    with pytest.raises(ValueError):
        Backoff(initial_s=0)


def test_the_queue_reads_in_arrival_order_and_an_operator_can_remove_one():
    sel = ChatSelector(SelectionConfig(max_age_s=60))
    a = sel.offer(m("ann", "first question"), 0.0).message
    b = sel.offer(m("bob", "second question"), 1.0).message
    c = sel.offer(m("cat", "third question"), 2.0).message
    assert [(msg.user, round(waited, 1)) for msg, waited in sel.queued(5.0)] == \
        [("ann", 5.0), ("bob", 4.0), ("cat", 3.0)]
    assert sel.remove(b.id) == b
    assert sel.remove(b.id) is None and sel.remove("no-such-id") is None
    assert sel.counters["removed"] == 1
    assert sel.pick(6.0) == a and sel.pick(6.0) == c and sel.pick(6.0) is None
    sel.offer(m("dan", "too late to answer"), 10.0)
    assert sel.queued(100.0) == [] and sel.counters["expired"] == 1
