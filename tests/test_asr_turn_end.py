"""The turn-end policy (pure), its gate, and the segmenter asking it on real speech."""

import threading

import numpy as np
import pytest

from broadcaster.asr.prosody import Contour
from broadcaster.asr.streaming import StreamingTranscriber, transcribe_frames, turn_end_gate
from broadcaster.asr.turn_end import TurnCue, TurnEndConfig, TurnEndGate, TurnEndPolicy, turn_cue
from broadcaster.mic.capture import WavFileSource
from broadcaster.mic.vad import SpeechPause, UtteranceEnd, VadConfig, VadSegmenter
from tests.support.data.speech import speech_with_pauses


@pytest.mark.parametrize("text", ["Can you hear me now?", "The weather is sunny.", "Wow!", "今天天气很好。",
                                  "你能听到我说话吗？", "你能听到我说话吗", "你在做什么呢", "“好的。”"])
def test_finished_sentences_and_questions_are_complete(text):
    assert turn_cue(text) is TurnCue.COMPLETE


@pytest.mark.parametrize("text", ["The weather is sunny,", "I went there and", "It was fun because.",
                                  "Let me think, um", "今天天气很好，", "我觉得所以", "然后", "嗯", "那个",
                                  "我们先吃饭，然后。", "第一、",
                                  # a subordinate clause or an announcement, whatever punctuation
                                  "If it rains tomorrow.", "Because we are short on time.",
                                  "I want to ask you.", "Okay. When we get there.", "如果明天下雨。",
                                  "因为时间不多了。", "我想问一下。", "好的。虽然很晚了。",
                                  "我想问你一下。", "吃完饭以后。", "我小的时候。"])
def test_mid_clause_endings_are_open(text):
    assert turn_cue(text) is TurnCue.OPEN


def test_no_cue_and_no_text():
    assert turn_cue("Hello there") is TurnCue.UNCLEAR
    assert turn_cue("我们明天早上见") is TurnCue.UNCLEAR
    assert turn_cue("") is TurnCue.UNCLEAR
    assert turn_cue(None) is TurnCue.NO_TEXT
    # a question mark wins over a last word that would leave a statement open
    assert turn_cue("What are you waiting for?") is TurnCue.COMPLETE
    # the subordinate clause got its main clause
    assert turn_cue("If it rains tomorrow, we stay home.") is TurnCue.COMPLETE
    assert turn_cue("如果明天下雨，我们就在家。") is TurnCue.COMPLETE


@pytest.mark.parametrize("text", ["The weather is sunny.", "今天天气很好。", "Thank you for watching…"])
def test_a_bare_period_needs_a_pitch_that_does_not_hold(text):
    """Whisper writes a period before any pause: with a held pitch it says nothing."""
    assert turn_cue(text, Contour.HELD) is TurnCue.UNCLEAR
    assert turn_cue(text, Contour.FALLING) is TurnCue.COMPLETE
    assert turn_cue(text, Contour.UNKNOWN) is TurnCue.COMPLETE
    assert turn_cue(text) is TurnCue.COMPLETE


@pytest.mark.parametrize("text", ["Can you hear me now?", "Wow!", "你能听到我说话吗？", "你能听到我说话吗。",
                                  "我们去公园散步吧。", "你在做什么呢"])
def test_questions_exclamations_and_particles_stay_complete_whatever_the_pitch(text):
    assert turn_cue(text, Contour.HELD) is TurnCue.COMPLETE


@pytest.mark.parametrize("text", ["If it rains tomorrow.", "The weather is sunny,", "如果明天下雨。", "我想问一下。"])
def test_a_falling_pitch_does_not_close_an_open_clause(text):
    assert turn_cue(text, Contour.FALLING) is TurnCue.OPEN


def test_policy_waits_by_cue_on_the_callers_clock():
    policy = TurnEndPolicy(TurnEndConfig(complete_ms=200, unclear_ms=500, hold_ms=1000))
    t0 = 100.0
    assert not policy.decide("Is it on?", t0, t0 + 0.19).end
    assert policy.decide("Is it on?", t0, t0 + 0.2).end
    assert not policy.decide("So I said,", t0, t0 + 0.9).end
    assert policy.decide("So I said,", t0, t0 + 1.0).end
    for unknown in ("Hello there", None):
        d = policy.decide(unknown, t0, t0 + 0.3)
        assert not d.end and d.wait_s == pytest.approx(0.5)
        assert policy.decide(unknown, t0, t0 + 0.5).end
    assert policy.decide("It is on.", t0, t0 + 0.2, Contour.FALLING).end
    held = policy.decide("It is on.", t0, t0 + 0.2, Contour.HELD)
    assert not held.end and held.cue is TurnCue.UNCLEAR and held.contour is Contour.HELD
    assert policy.decide("It is on.", t0, t0 + 0.5, Contour.HELD).end


def test_config_waits_must_be_ordered():
    with pytest.raises(ValueError, match="complete_ms"):
        TurnEndConfig(complete_ms=600, unclear_ms=500).validate()
    with pytest.raises(ValueError, match="hold_ms"):
        TurnEndPolicy(TurnEndConfig(unclear_ms=500, hold_ms=400))


def test_gate_uses_only_the_text_of_the_same_pause():
    gate = TurnEndGate(TurnEndPolicy())
    gate.heard(3, 1.50, "Is it on?")
    assert gate.should_end(3, 1.50, 1.75)
    assert not gate.should_end(3, 2.40, 2.65)      # speech resumed: a later pause, no text yet
    assert gate.last.cue is TurnCue.NO_TEXT
    assert not gate.should_end(4, 1.50, 1.75)      # another utterance


def test_gate_passes_the_pauses_contour_to_the_policy():
    gate = TurnEndGate(TurnEndPolicy())
    gate.heard(3, 1.50, "Sunny today.", Contour.HELD)
    assert not gate.should_end(3, 1.50, 1.75)
    assert gate.last.cue is TurnCue.UNCLEAR and gate.last.contour is Contour.HELD
    assert gate.should_end(3, 1.50, 2.00)
    gate.heard(3, 2.40, "Sunny today.", Contour.FALLING)
    assert gate.should_end(3, 2.40, 2.65) and gate.last.cue is TurnCue.COMPLETE
    assert gate.heard_for(3, 9.0) == (None, Contour.UNKNOWN, None)


def test_the_turn_models_verdict_decides_a_bare_period_and_nothing_else():
    """With a model's P(complete) the pitch is not asked; words that say finished or open
    keep their wait whatever the model says."""
    policy = TurnEndPolicy(TurnEndConfig(threshold=0.6))
    t0 = 10.0
    for text in ("Sunny today.", "今天天气很好。"):
        held_but_finished = policy.decide(text, t0, t0 + 0.2, Contour.HELD, p_complete=0.9)
        assert held_but_finished.end and held_but_finished.cue is TurnCue.COMPLETE
        assert held_but_finished.p_complete == 0.9
        falling_but_open = policy.decide(text, t0, t0 + 0.2, Contour.FALLING, p_complete=0.59)
        assert not falling_but_open.end and falling_but_open.cue is TurnCue.UNCLEAR
    assert policy.decide("Is it on?", t0, t0 + 0.2, p_complete=0.01).end
    assert policy.decide("你吃饭了吗", t0, t0 + 0.2, p_complete=0.01).end
    assert not policy.decide("If it rains tomorrow.", t0, t0 + 0.6, p_complete=0.99).end
    assert not policy.decide("所以", t0, t0 + 0.6, p_complete=0.99).end
    assert policy.decide("所以", t0, t0 + 1.0, p_complete=0.99).cue is TurnCue.OPEN
    with pytest.raises(ValueError, match="threshold"):
        TurnEndConfig(threshold=1.0).validate()


def test_gate_passes_the_models_verdict_to_the_policy():
    gate = TurnEndGate(TurnEndPolicy())
    gate.heard(3, 1.50, "Sunny today.", Contour.HELD, 0.8)
    assert gate.should_end(3, 1.50, 1.70) and gate.last.p_complete == 0.8
    gate.heard(3, 2.40, "Sunny today.", Contour.FALLING, 0.2)
    assert not gate.should_end(3, 2.40, 2.60) and gate.last.cue is TurnCue.UNCLEAR
    assert gate.heard_for(3, 2.40) == ("Sunny today.", Contour.FALLING, 0.2)


def test_gate_is_safe_across_threads():
    gate = TurnEndGate(TurnEndPolicy())
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            gate.heard(1, float(i % 7), "done." if i % 2 else "and,")
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        for i in range(20000):
            gate.should_end(1, float(i % 7), float(i % 7) + 0.3)
    finally:
        stop.set()
        t.join()


class _Scripted:
    """The ASR side of a gate, scripted: posts a fixed text for every pause it is told of."""

    def __init__(self, gate, text):
        self.gate, self.text = gate, text

    def __call__(self, events):
        for ev in events:
            if isinstance(ev, SpeechPause):
                self.gate.heard(ev.utt_id, ev.speech_end, self.text)
        return events


@pytest.fixture(scope="module")
def one_sentence(tmp_path_factory):
    path, spans = speech_with_pauses(tmp_path_factory.mktemp("turn") / "one.wav", ["Can you hear me now?"],
                                     lead_s=0.5, tail_s=1.5, trim=True)
    return list(WavFileSource(str(path)).frames()), spans[0]


def _end_delay(frames, gate, text=None):
    """Stream seconds from the last speech to the VAD's UtteranceEnd (real Silero VAD)."""
    seg = VadSegmenter(VadConfig(min_silence_ms=500), turn_end=gate)
    post = _Scripted(gate, text) if gate is not None else (lambda evs: evs)
    fed = 0
    for f in frames:
        fed += len(f)
        for ev in post(seg.process(f)):
            if isinstance(ev, UtteranceEnd):
                return fed / 16000 - ev.speech_end
    raise AssertionError("no utterance end")


def test_segmenter_ends_a_turn_when_the_gate_says_so(one_sentence):
    frames, _ = one_sentence
    fixed = _end_delay(frames, None)
    complete = _end_delay(frames, TurnEndGate(TurnEndPolicy()), "Can you hear me now?")
    open_ = _end_delay(frames, TurnEndGate(TurnEndPolicy()), "Can you hear me, and")
    assert 0.48 <= fixed <= 0.56
    assert 0.19 <= complete <= 0.26
    assert 0.98 <= open_ <= 1.06


def test_final_reuses_the_pause_transcript_and_comes_early(asr, one_sentence):
    frames, _ = one_sentence
    trs = list(transcribe_frames(iter(frames), asr, VadConfig(min_silence_ms=500), turn_end=TurnEndConfig()))
    finals = [t for t in trs if t.kind == "final"]
    assert len(finals) == 1 and "hear" in finals[0].text.lower()
    assert finals[0].decode_s == 0.0                         # the pause's text, not a second decode
    assert finals[0].text in [t.text for t in trs if t.kind == "partial"]
    old = [t for t in transcribe_frames(iter(frames), asr, VadConfig(min_silence_ms=500)) if t.kind == "final"]
    assert len(old) == 1 and old[0].decode_s > 0


def test_resumed_speech_discards_the_pause_transcript(asr, tmp_path):
    """A pause shorter than the wait its words ask for: one final covering both clauses."""
    path, spans = speech_with_pauses(tmp_path / "two.wav", [("The weather today is sunny,", "and warm in the city.")],
                                     lead_s=0.5, tail_s=1.5, inner_pause_s=0.3, trim=True)
    frames = list(WavFileSource(str(path)).frames())
    gate_cfg = TurnEndConfig(complete_ms=450)       # what whisper puts at the comma does not matter here
    finals = [t for t in transcribe_frames(iter(frames), asr, VadConfig(min_silence_ms=500), turn_end=gate_cfg)
              if t.kind == "final"]
    assert len(finals) == 1, [t.text for t in finals]
    assert {"sunny", "city"} <= set(finals[0].text.lower().replace(",", " ").replace(".", " ").split())
    assert np.isclose(finals[0].speech_end, spans[0][1], atol=0.15)


def _decided_delay(frames, asr):
    """Stream seconds from the last speech to the VAD's UtteranceEnd, with the real transcriber
    leaving each pause's text and contour at the gate (decoded inline: always in time)."""
    gate = turn_end_gate(VadConfig(min_silence_ms=500), TurnEndConfig())
    seg = VadSegmenter(VadConfig(min_silence_ms=500), turn_end=gate)
    st = StreamingTranscriber(asr, partials=False, gate=gate)
    fed = 0
    for f in frames:
        fed += len(f)
        for ev in seg.process(f):
            st.handle(ev)
            if isinstance(ev, UtteranceEnd):
                return fed / 16000 - ev.speech_end, gate.last
    raise AssertionError("no utterance end")


def test_a_statement_that_falls_ends_early(asr, tmp_path):
    path, _ = speech_with_pauses(tmp_path / "statement.wav", ["Thank you for watching."], lead_s=0.5,
                                 tail_s=1.5, trim=True)
    delay, decision = _decided_delay(list(WavFileSource(str(path)).frames()), asr)
    assert decision.contour is Contour.FALLING and decision.cue is TurnCue.COMPLETE
    assert 0.19 <= delay <= 0.26


def test_a_held_clause_with_a_period_is_not_taken_for_the_end(asr, tmp_path):
    """Whisper writes "Thank you for watching." at the pause after the comma; the pitch holds,
    so the 0.3 s pause does not end the turn: one final for the whole sentence."""
    path, spans = speech_with_pauses(tmp_path / "held.wav", [("Thank you for watching,", "see you tomorrow morning.")],
                                     lead_s=0.5, tail_s=1.5, inner_pause_s=0.3, trim=True)
    frames = list(WavFileSource(str(path)).frames())
    finals = [t for t in transcribe_frames(iter(frames), asr, VadConfig(min_silence_ms=500), turn_end=TurnEndConfig())
              if t.kind == "final"]
    assert len(finals) == 1, [t.text for t in finals]
    assert {"watching", "tomorrow"} <= set(finals[0].text.lower().replace(",", " ").replace(".", " ").split())


def _planner_with_speech(seconds=1.0):
    from broadcaster.asr.streaming import TranscriptPlanner
    from broadcaster.mic.vad import SpeechAudio, SpeechOnset
    planner = TranscriptPlanner(partial_interval_s=100.0, pause_decodes=True)
    planner.add(SpeechOnset(1, 0.0, 0.0, 0.9))
    planner.add(SpeechAudio(1, np.zeros(int(seconds * 16000), np.float32)))
    return planner


def test_planner_decodes_a_pause_once_and_forgets_it_when_speech_resumes_or_is_dropped():
    from broadcaster.mic.vad import SpeechAudio, UtteranceDropped
    planner = _planner_with_speech()
    planner.add(SpeechPause(1, 1.0, 0.0))
    job = planner.next_job()
    assert job.kind == "pause" and job.speech_end == 1.0 and len(job.audio) == 16000
    assert planner.next_job() is None
    planner.add(SpeechPause(1, 1.0, 0.0))
    planner.add(SpeechAudio(1, np.zeros(320, np.float32)))       # speech resumed before the decode
    assert planner.next_job() is None
    planner = _planner_with_speech(0.1)
    planner.add(SpeechPause(1, 0.1, 0.0))
    planner.add(UtteranceDropped(1, 0.0, 0.1, "short"))
    assert planner.next_job() is None
