"""srt:// URL parsing: OBS/ffmpeg and srt-live-transmit forms, and clear errors."""

import pytest

from broadcaster.transport.srt_url import SrtUrlError, parse_srt_url


def test_obs_style_caller_url():
    u = parse_srt_url("srt://ingest.example.com:9000?streamid=live/abc&passphrase=0123456789ab"
                      "&pbkeylen=32&latency=2000000")
    assert (u.host, u.port, u.mode) == ("ingest.example.com", 9000, "caller")
    assert u.latency_ms == 2000            # ffmpeg/OBS latency is in microseconds
    assert u.streamid == "live/abc" and u.pbkeylen == 32
    assert "0123456789ab" not in repr(u) and "live/abc" not in repr(u)


@pytest.mark.parametrize("query,expected", [("latency=200", 200), ("latency=9999", 9999),
                                             ("latency=120000", 120), ("latency_ms=50", 50),
                                             ("", 120)])
def test_latency_units(query, expected):
    assert parse_srt_url(f"srt://h:1?{query}").latency_ms == expected


def test_listener_defaults_and_ipv6():
    u = parse_srt_url("srt://:7001")
    assert (u.host, u.mode) == ("", "listener")
    assert parse_srt_url("srt://[::1]:7001?mode=caller").display() == "[::1]:7001"


@pytest.mark.parametrize("url,message", [
    ("rtmp://h/app", "not an srt:// URL"),
    ("srt://h", "a port is required"),
    ("srt://h:99999", "bad host or port"),
    ("srt://h:abc", "bad host or port"),
    ("srt://h:0", "the port must be 1 to 65535, got 0"),
    ("srt://:9000?mode=caller", "caller mode needs a host"),
    ("srt://h:9000?mode=rendezvous", "rendezvous mode is not supported"),
    ("srt://h:9000?mode=pusher", "mode must be caller or listener"),
    ("srt://h:9000?latency=abc", "latency must be an integer"),
    ("srt://h:9000?latency=-5", "latency must be 0..60000 ms"),
    ("srt://h:9000?passphrase=short", "passphrase must be 10 to 79 characters (it has 5)"),
    ("srt://h:9000?passphrase=0123456789&pbkeylen=20", "pbkeylen must be 16, 24 or 32"),
    ("srt://h:9000?pbkeylen=16", "pbkeylen given without a passphrase"),
    ("srt://h:9000?latncy=100", "unknown option 'latncy'"),
    ("srt://h:9000?transtype=file", "only transtype=live"),
    ("srt://h:9000?pkt_size=1456", "pkt_size must be 1316"),
    ("srt://h:9000/path", "unexpected path"),
])
def test_bad_urls_name_the_fault(url, message):
    with pytest.raises(SrtUrlError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_srt_url(url)


def test_errors_do_not_show_the_passphrase():
    with pytest.raises(SrtUrlError) as info:
        parse_srt_url("srt://h:9000?passphrase=very-secret-pass&latency=x")
    assert "very-secret-pass" not in str(info.value)
