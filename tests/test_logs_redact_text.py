"""redact_text: the free-text scrubber the log filter uses (added to broadcaster/redact.py)."""

from __future__ import annotations

import pytest

from broadcaster.redact import redact_text, redact_url

CASES = [
    ("push rtmp://a.example.com/live/k3y_abc failed",
     "push rtmp://a.example.com/live/*** failed"),
    ("to rtmps://a:443/app/k3y.", "to rtmps://a:443/app/***."),
    ("srt://h:9000?streamid=#!::r=live/k3y,m=publish&mode=caller",
     "srt://h:9000?streamid=***&mode=caller"),
    ("(srt://h:1?passphrase=pw12345&pbkeylen=16)", "(srt://h:1?passphrase=***&pbkeylen=16)"),
    ("GET https://user:pa55@api.example.com/v1?token=t0k",
     "GET https://***@api.example.com/v1?token=***"),
    ("headers {'Authorization': 'Bearer sk-abc123'}", "headers {'Authorization': 'Bearer ***'}"),
    ("{'passphrase': 'pw', 'host': 'h'}", "{'passphrase': '***', 'host': 'h'}"),
    ('{"api_key": "sk-1"}', '{"api_key": "***"}'),
    ("--stream-key=abc --bitrate=900", "--stream-key=*** --bitrate=900"),
    ("TWITCH_OAUTH_TOKEN=oauth:xyz", "TWITCH_OAUTH_TOKEN=***"),
    ("password: hunter2!", "password: ***"),
    ("scene news.yaml: key: anchor.size must be WxH",
     "scene news.yaml: key: anchor.size must be WxH"),
    ("keyframe_interval=2 monkey=3 /var/lib/broadcaster/out.flv",
     "keyframe_interval=2 monkey=3 /var/lib/broadcaster/out.flv"),
    ("srt://[::1]:9000?passphrase=pw9&mode=caller",
     "srt://[::1]:9000?passphrase=***&mode=caller"),
    ("[see rtmp://h/app/k3y]", "[see rtmp://h/app/***]"),
    ("", ""),
]


@pytest.mark.parametrize("text,expected", CASES)
def test_redact_text(text, expected):
    assert redact_text(text) == expected


def test_srt_streamid_after_hash_is_masked_by_redact_url():
    # "#" starts no fragment in a media URL: the whole streamid is the secret
    assert redact_url("srt://h:9000?streamid=#!::r=live/k3y,m=publish") == \
        "srt://h:9000?streamid=***"
    # web URLs keep their fragment
    assert redact_url("https://h/p?token=t#section") == "https://h/p?token=***#section"


def test_idempotent():
    for text, expected in CASES:
        assert redact_text(expected) == expected
