"""Which slots carry a picture under rate control's frame-rate cut and audio only
(output/pacing.py): the picture never stands still for more than a second."""

from broadcaster.output.pacing import PicturePacing


def _sent(pacing: PicturePacing, slots: range, needs_picture=()) -> list[int]:
    return [i for i in slots if not pacing.skip(i, i in needs_picture)]


def test_every_picture_goes_without_a_cut():
    assert _sent(PicturePacing(25), range(10)) == list(range(10))


def test_a_frame_rate_cut_sends_every_nth_picture():
    pacing = PicturePacing(25)
    pacing.set(4, False)
    assert _sent(pacing, range(1, 13)) == [1, 4, 8, 12]    # (the first: nothing sent yet)


def test_audio_only_still_sends_one_picture_a_second():
    pacing = PicturePacing(25)
    _sent(pacing, range(5))
    pacing.set(4, True)
    sent = _sent(pacing, range(5, 105))
    assert sent == [29, 54, 79, 104]
    gaps = [b - a for a, b in zip([4] + sent, sent)]
    assert max(gaps) <= 25


def test_a_new_session_gets_its_picture_at_once():
    pacing = PicturePacing(25)
    pacing.set(4, True)
    assert _sent(pacing, range(10), needs_picture={6}) == [0, 6]


def test_a_backlog_written_under_a_deep_cut_keeps_a_picture_a_second():
    pacing = PicturePacing(20)
    pacing.set(3, False)
    sent = _sent(pacing, range(60))
    assert max(b - a for a, b in zip(sent, sent[1:])) <= 3
