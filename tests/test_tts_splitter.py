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


MIXED = ("今天的新闻有三条。First, OpenAI发布了GPT-6! 第二条：气温3.5度，比昨天高0.5度。"
         "第三条来自U.S.总统Dr. Smith的讲话!接下来是天气?好的")
MIXED_SENTENCES = ["今天的新闻有三条。", "First, OpenAI发布了GPT-6!", "第二条：气温3.5度，比昨天高0.5度。",
                   "第三条来自U.S.总统Dr. Smith的讲话!", "接下来是天气?", "好的"]


def test_mixed_chinese_and_english_sentences():
    """Half-width ! ? . end a sentence when Chinese follows at once (no space); decimals,
    initialisms (U.S.) and abbreviations (Dr.) inside Chinese do not."""
    for chunk in (1, 2, 7, len(MIXED)):
        assert feed_all(MIXED, chunk=chunk) == MIXED_SENTENCES, chunk


def test_mixed_first_fragment_cut_at_a_full_width_comma():
    """A mixed first sentence is cut at its first clause mark with four words or characters
    on each side (a Latin word counts as one), not at a space."""
    from broadcaster.tts import split_first_fragment as cut
    assert cut("First, OpenAI发布了GPT-6，这是今年最大的科技新闻。") == [
        "First, OpenAI发布了GPT-6，", "这是今年最大的科技新闻。"]
    assert cut("据Reuters报道，苹果公司今天发布了新款iPhone手机。") == [
        "据Reuters报道，", "苹果公司今天发布了新款iPhone手机。"]
    assert cut("气温3,500米以上有雪。") == ["气温3,500米以上有雪。"]  # a digit group, not a clause
    assert cut("GPT-6来了，大家好。") == ["GPT-6来了，大家好。"]      # too short a tail to cut


def test_clauses_for_clause_by_clause_engines():
    from broadcaster.tts.splitter import clauses
    assert clauses("大家好，欢迎收看今晚的新闻节目。") == ["大家好，", "欢迎收看今晚的新闻节目。"]
    assert clauses("气温3.5度，湿度1,000！！好的") == ["气温3.5度，", "湿度1,000！！", "好的"]
    assert clauses("“你好！”他说。") == ["“你好！”", "他说。"]
