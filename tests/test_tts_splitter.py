from broadcaster.tts import SentenceSplitter


def feed_all(text: str, chunk: int = 3, **kw) -> list[str]:
    s = SentenceSplitter(**kw)
    out: list[str] = []
    for i in range(0, len(text), chunk):
        out += s.feed(text[i:i + chunk])
    return out + s.flush()


def test_sentences_come_out_as_soon_as_they_end():
    s = SentenceSplitter()
    assert s.feed("Hello there") == []
    assert s.feed(". How") == ["Hello there."]
    assert s.feed(" are you?") == []  # '?' might be followed by more punctuation or a quote
    assert s.feed(" Fine") == ["How are you?"]
    assert s.flush() == ["Fine"]


def test_abbreviations_decimals_and_closers():
    out = feed_all('Mr. Smith paid 3.14 dollars. "Really?" she asked! Ok')
    assert out == ["Mr. Smith paid 3.14 dollars.", '"Really?"', "she asked!", "Ok"]


def test_long_sentence_cut_at_clause_boundaries():
    text = ("This sentence goes on, and on and on, with many clauses; and it keeps going past "
            "the limit that we set for one synthesis call without any full stop at all")
    out = feed_all(text, max_chars=50)
    assert len(out) >= 3
    assert all(len(p) <= 50 for p in out)
    assert out[0].endswith(",") or out[0].endswith(";")
    assert " ".join(out) == text


def test_cjk_sentences_and_clauses():
    out = feed_all("你好。今天天气很好！我们去公园吧？好的", chunk=1)
    assert out == ["你好。", "今天天气很好！", "我们去公园吧？", "好的"]
    long = "这是一个很长的句子，" * 8 + "结束。"
    parts = feed_all(long, chunk=2, max_chars=30)
    assert all(len(p) <= 30 for p in parts) and len(parts) > 2
    assert parts[0].endswith("，")
    assert "".join(parts) == long


def test_punctuation_only_and_empty():
    assert feed_all("") == []
    assert feed_all("...") == []
    assert feed_all("Hi!!! ...") == ["Hi!!!"]  # nothing speakable after the sentence


def test_bad_limits_raise():
    import pytest
    with pytest.raises(ValueError, match="min_chars"):
        SentenceSplitter(max_chars=5, min_chars=10)


def test_first_fragment_cut():
    from broadcaster.tts import split_first_fragment as cut
    assert cut("Good evening and welcome to the late news.") == ["Good evening and welcome", "to the late news."]
    assert cut("Good evening, everyone, welcome to the late news.") == ["Good evening,",
                                                                        "everyone, welcome to the late news."]
    assert cut("Short one here.") == ["Short one here."]
    assert cut("大家好啊朋友们，欢迎收看今晚的新闻节目。") == ["大家好啊朋友们，", "欢迎收看今晚的新闻节目。"]
    assert cut("你好，欢迎。") == ["你好，欢迎。"]
