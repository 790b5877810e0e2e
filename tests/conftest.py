import pytest

from tests.support.servers.nginx_rtmp import NginxRtmp


@pytest.fixture
def nginx(tmp_path):
    why = NginxRtmp.missing()
    if why:
        pytest.fail(f"{why} (tools/bootstrap.sh installs nginx with libnginx-mod-rtmp)")
    server = NginxRtmp(tmp_path / "nginx")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def asr():
    """faster-whisper tiny.en, loaded once per test module."""
    from broadcaster.asr.whisper import WhisperAsr
    return WhisperAsr()


@pytest.fixture(scope="module")
def two_wav(tmp_path_factory):
    """tests.support.data.speech's two utterances as a WAV: (path, [(start, end) s each])."""
    from tests.support.data.speech import speech_with_pauses
    return speech_with_pauses(tmp_path_factory.mktemp("speech") / "two.wav")


@pytest.fixture(scope="module")
def piper():
    """The packaged Piper voice, loaded once per test module."""
    from broadcaster.tts import PiperEngine
    engine = PiperEngine()
    yield engine
    engine.close()
