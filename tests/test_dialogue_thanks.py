"""Thank-yous for gifts and follows (pure policy, `now` passed in): templated, gathered,
rate-limited, folded, paying givers named first, bounded; the turn policy never lets them
take a waiting viewer's turn twice in a row; bad scene settings name the key."""

from dataclasses import replace

import pytest

from broadcaster.chat.message import ChatEvent
from broadcaster.dialogue.thanks import ThanksQueue, thanks_settings
from broadcaster.dialogue.turns import choose_turn
from broadcaster.errors import ConfigError

ZH = {"gift": "谢谢{user}送的{num}个{gift}!", "gifts": "谢谢{users}的礼物!",
      "follow": "欢迎{user}关注!", "follows": "欢迎{users}关注!",
      "names": {"separator": "、", "last": "和", "others": "另外{n}位"},
      "max_names": 2, "min_interval_s": 20, "gather_s": 2}


def gift(user, name="小花花", num=1, paid=0.1):
    return ChatEvent(platform="bilibili", kind="gift", user=user, gift=name, count=num,
                     paid_amount=paid)


def follow(user):
    return ChatEvent(platform="bilibili", kind="follow", user=user)


def queue(**changes):
    return ThanksQueue(thanks_settings({**ZH, **changes}, "zh.yaml"))


def test_one_gift_is_thanked_after_the_gather_window_in_its_template():
    q = queue()
    assert q.take(0.0) is None and q.next_wait(0.0) == float("inf")
    assert q.note(gift("小明", num=3), 10.0)
    assert not q.due(11.0) and q.next_wait(11.0) == pytest.approx(1.0)
    assert q.take(11.9) is None
    assert q.take(12.0) == "谢谢小明送的3个小花花!"
    assert q.take(12.1) is None and q.pending() == 0


def test_never_more_than_one_thank_you_per_interval_and_many_are_folded():
    q = queue()
    q.note(gift("甲"), 0.0)
    assert q.take(2.0) == "谢谢甲送的1个小花花!"
    for i, user in enumerate(["乙", "丙", "丁", "戊", "己"]):
        q.note(gift(user), 3.0 + i)
    assert not q.due(21.9) and q.next_wait(10.0) == pytest.approx(12.0)
    assert q.take(22.0) == "谢谢乙、丙和另外3位的礼物!"
    q.note(gift("庚"), 23.0)
    q.note(gift("辛"), 23.5)
    assert q.take(30.0) is None
    assert q.take(42.0) == "谢谢庚和辛的礼物!"


def test_paying_givers_are_named_first_and_gifts_and_follows_share_one_line():
    q = queue()
    q.note(gift("白嫖", "辣条", num=10, paid=0.0), 0.0)
    q.note(gift("老板", "舰长", paid=198.0), 0.5)
    q.note(gift("小红", "小花花", paid=0.1), 0.6)
    q.note(follow("新人"), 0.7)
    assert q.take(3.0) == "谢谢老板、小红和另外1位的礼物! 欢迎新人关注!"
    # one viewer giving two kinds of gifts is folded too; repeats of one gift are summed
    q.note(gift("小明", "辣条", num=2), 30.0)
    q.note(gift("小明", "辣条", num=3), 30.5)
    assert q.take(33.0) == "谢谢小明送的5个辣条!"
    q.note(gift("小明", "辣条"), 60.0)
    q.note(gift("小明", "小花花"), 60.1)
    assert q.take(63.0) == "谢谢小明的礼物!"


def test_kinds_the_scene_does_not_thank_are_ignored_and_memory_is_bounded():
    q = ThanksQueue(thanks_settings({"follow": "Welcome {user}!", "follows": "Welcome {users}!",
                                     "gather_s": 0}, "en.yaml"))
    assert not q.note(gift("a"), 0.0) and q.counters["ignored"] == 1
    assert not q.note(ChatEvent(platform="b", kind="entrance", user="x"), 0.0)
    assert q.take(0.0) is None
    small = ThanksQueue(replace(thanks_settings(ZH, "zh.yaml"), max_tracked=10))
    for i in range(1000):
        small.note(follow(f"v{i}"), 0.0)
    assert len(small._waiting["follow"]) == 10 and small.pending() == 1000
    assert small.take(5.0) == "欢迎v0、v1和另外998位关注!"
    en = ThanksQueue(thanks_settings({"follow": "Welcome {user}!", "follows": "Welcome {users}!",
                                      "gather_s": 0}, "en.yaml"))
    for user in ("ann", "bob", "cy"):
        en.note(follow(user), 0.0)
    assert en.take(0.0) == "Welcome ann, bob and cy!"


def test_a_thank_you_never_takes_a_waiting_viewers_turn_twice_in_a_row():
    chat_waits = {"chat": 3}
    assert choose_turn(chat_waits, False, thanks_due=True, last_kind="chat") == "thanks"
    assert choose_turn(chat_waits, False, thanks_due=True, last_kind="thanks") == "chat"
    assert choose_turn({}, False, thanks_due=True, last_kind="thanks") == "thanks"
    # the host and /say lines still come first; a thank-you goes before a scripted line
    assert choose_turn({"host": 1, "chat": 1}, False, thanks_due=True) == "host"
    assert choose_turn({"say": 1}, True, thanks_due=True) == "say"
    assert choose_turn({}, True, thanks_due=True) == "thanks"
    assert choose_turn({"chat": 1}, True) == "chat"
    assert choose_turn({}, True) == "script" and choose_turn({}, False) is None
    # a gift every turn, questions waiting: at least every other turn answers a viewer
    q = queue(min_interval_s=1, gather_s=0)
    now, last, kinds = 0.0, None, []
    for _ in range(20):
        q.note(gift(f"g{now}"), now)
        last = choose_turn({"chat": 5}, False, q.due(now), last)
        if last == "thanks":
            q.take(now)
        kinds.append(last)
        now += 3.0
    assert "thanks" in kinds and all(a != b or a == "chat" for a, b in zip(kinds, kinds[1:]))


@pytest.mark.parametrize("data, key, message", [
    ({"gift": "谢谢{user}"}, "thanks.gifts", "is required with thanks.gift"),
    ({"gift": "谢谢{who}", "gifts": "x"}, "thanks.gift", "unknown placeholder(s) ['who']"),
    ({"follow": "hi {user}", "follows": "hi {user}"}, "thanks.follows", "unknown placeholder"),
    ({"gift": "{user.__class__}", "gifts": "x"}, "thanks.gift", "unknown placeholder"),
    ({"gift": "谢谢{user", "gifts": "x"}, "thanks.gift", "not a valid template"),
    ({"follows": "x"}, "thanks.follows", "needs thanks.follow"),
    ({"min_interval_s": 5}, "thanks.gift", "set at least one"),
    ({"follow": "a", "follows": "b", "min_interval_s": 0}, "thanks.min_interval_s", "between 1"),
    ({"follow": "a", "follows": "b", "names": {"others": "more"}}, "thanks.names.others", "{n}"),
    ({"follow": "a", "follows": "b", "thank": 1}, "thanks.thank", "unknown key"),
])
def test_bad_settings_name_the_key(data, key, message):
    with pytest.raises(ConfigError) as err:
        thanks_settings(data, "scene.yaml")
    assert err.value.key == key and message in str(err.value), str(err.value)
    assert "scene.yaml" in str(err.value)


def test_a_reload_keeps_what_waits_unless_its_kind_is_no_longer_thanked():
    q = queue()
    q.note(gift("甲"), 0.0)
    q.note(follow("乙"), 0.0)
    q.reconfigure(thanks_settings({"follow": "Welcome {user}!", "follows": "Welcome {users}!"},
                                  "en.yaml"))
    assert q.pending() == 1 and q.take(2.0) == "Welcome 乙!"
    q.note(follow("丙"), 3.0)
    q.reconfigure(thanks_settings(ZH, "zh.yaml"))
    assert q.take(22.0) == "欢迎丙关注!"
