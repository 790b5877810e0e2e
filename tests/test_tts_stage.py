"""SpeechStage with real Piper: streaming start, ordering, latency, interruption."""
import asyncio
import time

import numpy as np

from broadcaster.tts import SpeechStage
from tests.support.sinks import TimedSink


async def slow_tokens(text: str, delay: float):
    for word in text.split(" "):
        yield word + " "
        await asyncio.sleep(delay)


def test_first_sentence_is_spoken_while_text_still_streams(piper):
    sink = TimedSink()
    stage = SpeechStage(piper, sink)
    text = "Welcome to the evening news. " + "Here is a much longer second sentence that arrives slowly. " * 2

    async def main():
        t0 = time.monotonic()
        report = await stage.speak(slow_tokens(text, 0.05), line_id=3)
        return t0, report, time.monotonic()

    try:
        t0, report, t_end = asyncio.run(main())
    finally:
        stage.close()
    assert [c for _, _, c, _ in sink.items][0] == "Welcome to the evening news."
    assert len(sink.items) == 3 and all(i[3] == 3 for i in sink.items)
    # first sentence pushed long before the text finished streaming (~1 s of tokens)
    assert sink.items[0][0] - t0 < 0.7
    assert sink.items[0][0] < t_end - 0.5
    assert report.first_audio_latency_s is not None and report.first_audio_latency_s < 0.7
    assert all(p.dtype == np.float32 and p.ndim == 1 for _, p, _, _ in sink.items)
    assert 5.0 < report.seconds_of_speech < 15.0


def test_interrupt_drops_queued_sentences(piper):
    sink = TimedSink()
    stage = SpeechStage(piper, sink)
    text = " ".join(f"This is sentence number {i} of a long monologue." for i in range(12))

    async def main():
        task = asyncio.create_task(stage.say(text, line_id=1))
        while not sink.items:
            await asyncio.sleep(0.01)
        t = time.monotonic()
        stage.interrupt()
        report = await task
        return report, time.monotonic() - t

    try:
        report, took = asyncio.run(main())
        assert report.interrupted
        assert len(sink.items) <= 2  # at most the sentence already in synthesis
        assert sink.cuts == 1
        assert took < 0.5
        # the stage still works for the next line
        again = asyncio.run(stage.say("Next line.", line_id=2))
        assert again.sentences == ["Next line."] and not again.interrupted
    finally:
        stage.close()


def test_long_first_sentence_starts_with_a_short_fragment(piper):
    sink = TimedSink()
    stage = SpeechStage(piper, sink, first_fragment_words=6)
    try:
        report = asyncio.run(stage.say("Good evening and welcome to the late news. Second sentence.", line_id=4))
    finally:
        stage.close()
    assert report.sentences == ["Good evening and welcome", "to the late news.", "Second sentence."]


def test_interrupt_while_text_is_stalled_returns_at_once(piper):
    sink = TimedSink()
    stage = SpeechStage(piper, sink)

    async def stalled():
        yield "First sentence here. And then the model "
        await asyncio.sleep(30)  # the LLM hangs
        yield "never finishes."

    async def main():
        task = asyncio.create_task(stage.speak(stalled(), line_id=9))
        while not sink.items:
            await asyncio.sleep(0.01)
        t = time.monotonic()
        stage.interrupt()
        report = await asyncio.wait_for(task, 2.0)
        return report, time.monotonic() - t

    try:
        report, took = asyncio.run(main())
    finally:
        stage.close()
    assert report.interrupted and took < 0.2
    assert [c for _, _, c, _ in sink.items] == ["First sentence here."]


def test_a_replaced_engine_is_closed_after_the_sentence_in_progress(piper):
    """A reload swaps the voice: the old engine's model is released, but not under the sentence
    it is still speaking."""
    import threading

    from broadcaster.tts.engine import Synthesized

    started, release = threading.Event(), threading.Event()
    events: list[str] = []

    class SlowEngine:
        name = "slow"

        def synthesize(self, text: str) -> Synthesized:
            started.set()
            release.wait(5)
            events.append("spoken")
            return Synthesized(np.full(2400, 0.1, np.float32), 24000, self.name)

        def close(self) -> None:
            events.append("closed")

    sink = TimedSink()
    stage = SpeechStage(SlowEngine(), sink)

    async def main():
        task = asyncio.create_task(stage.say("One sentence.", line_id=1))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
        stage.set_engine(piper, -20.0)
        await asyncio.sleep(0.2)
        assert events == []            # not closed under the sentence it is speaking
        release.set()
        await task
        await asyncio.sleep(0.2)

    try:
        asyncio.run(main())
    finally:
        stage.close()
    assert events == ["spoken", "closed"]
    assert stage.engine is piper
