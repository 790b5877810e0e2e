"""The control endpoint refuses what a foreign web page could send: cross-origin and non-JSON
POSTs, foreign Host headers (DNS rebinding), foreign Origins on the WebSocket; with a token,
everything but /healthz and /metrics needs it. Real ControlServer, real aiohttp clients."""

import http.client
import json
import time

import aiohttp
import pytest

from broadcaster.chat.selection import ChatSelector, SelectionConfig
from broadcaster.chat.web import add_chat_routes
from broadcaster.config import load_config
from broadcaster.errors import ConfigError
from broadcaster.service.access import AccessPolicy
from broadcaster.service.control import ControlServer
from broadcaster.service.health import Health
from broadcaster.service.metrics import Metrics
from broadcaster.service.routes import add_service_routes
from tests.support.broadcaster_proc import (
    run_broadcaster,
    run_env,
    start_broadcaster,
    wait_on_air,
    write_config,
)
from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.processes import stop

TOKEN = "control-token-0123456789"


@pytest.fixture
def server(request):
    token = getattr(request, "param", None)
    selector = ChatSelector(SelectionConfig())
    control = ControlServer("127.0.0.1", 0, token=token)
    add_chat_routes(control.app, lambda m: selector.offer(m, time.monotonic()))
    add_service_routes(control.app, Metrics(process_metrics=False), Health())
    control.start()
    try:
        yield control, selector
    finally:
        control.stop()


def raw_request(port, method, path, body=b"", headers=None):
    """(status, body: decoded when JSON) of a request with exactly these headers (http.client
    adds Host only when none is given)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    headers = dict(headers or {})
    conn.putrequest(method, path, skip_host="Host" in headers, skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    if resp.getheader("Content-Type", "").startswith("application/json"):
        return resp.status, json.loads(data)
    return resp.status, data


CHAT = json.dumps({"user": "eve", "text": "say something rude"}).encode()


def test_a_cross_origin_text_plain_post_is_refused_and_nothing_is_queued(server):
    control, selector = server
    status, body = raw_request(control.port, "POST", "/chat", CHAT,
                               {"Content-Type": "text/plain", "Origin": "https://evil.example"})
    assert status == 403 and body["error"] == "bad_origin"
    status, body = raw_request(control.port, "POST", "/chat", CHAT, {"Content-Type": "text/plain"})
    assert status == 415 and body["error"] == "not_json"
    status, body = raw_request(control.port, "POST", "/chat", CHAT,
                               {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415
    assert selector.pick(time.monotonic()) is None
    status, body = raw_request(control.port, "POST", "/chat", CHAT,
                               {"Content-Type": "application/json; charset=utf-8",
                                "Origin": f"http://localhost:{control.port}"})
    assert status == 202, body
    assert selector.pick(time.monotonic()).user == "eve"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.nip.io"])
def test_a_foreign_host_header_is_refused_on_every_route(server, host):
    control, _ = server
    for method, path, body in (("POST", "/chat", CHAT), ("GET", "/healthz", b""),
                               ("GET", "/metrics", b"")):
        status, reply = raw_request(control.port, method, path, body,
                                    {"Host": host, "Content-Type": "application/json"})
        assert status == 403 and reply["error"] == "bad_host", (path, status)
    status, _ = raw_request(control.port, "GET", "/healthz", b"", {"Host": f"localhost:{control.port}"})
    assert status in (200, 503)


def test_a_foreign_origin_cannot_open_the_chat_websocket(server):
    control, _ = server
    url = f"http://127.0.0.1:{control.port}/chat/ws"

    async def attempt(origin):
        async with aiohttp.ClientSession() as http:
            try:
                async with http.ws_connect(url, origin=origin) as ws:
                    await ws.send_json({"user": "web", "text": "hello"})
                    return (await ws.receive_json(timeout=5))["type"]
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status

    assert control.call(attempt("https://evil.example")) == 403
    assert control.call(attempt(f"http://127.0.0.1:{control.port}")) == "accepted"


@pytest.mark.parametrize("server", [TOKEN], indirect=True)
def test_with_a_token_every_route_but_health_and_metrics_needs_it(server):
    control, _ = server
    json_type = {"Content-Type": "application/json"}
    assert raw_request(control.port, "POST", "/chat", CHAT, json_type)[0] == 401
    assert raw_request(control.port, "POST", "/chat", CHAT,
                       {**json_type, "Authorization": "Bearer wrong-token-0000000000"})[0] == 401
    assert raw_request(control.port, "POST", "/chat", CHAT,
                       {**json_type, "Authorization": f"Bearer {TOKEN}"})[0] == 202
    assert raw_request(control.port, "GET", "/healthz")[0] in (200, 503)
    status, text = raw_request(control.port, "GET", "/metrics")
    assert status == 200 and b"# TYPE" in text

    async def ws(query):
        async with aiohttp.ClientSession() as http:
            try:
                async with http.ws_connect(f"http://127.0.0.1:{control.port}/chat/ws{query}"):
                    return 101
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status

    assert control.call(ws("")) == 401
    assert control.call(ws(f"?token={TOKEN}")) == 101


def test_access_policy_is_pure_and_names_the_reason():
    policy = AccessPolicy("0.0.0.0", TOKEN)
    ok = {"Host": "studio.lan:8765", "Authorization": f"Bearer {TOKEN}",
          "Content-Type": "application/json"}
    assert policy.refusal("POST", "/say", ok, {}) is None
    assert policy.refusal("POST", "/say", {**ok, "Origin": "http://studio.lan:8765"}, {}) is None
    assert policy.refusal("POST", "/say", {**ok, "Origin": "null"}, {}).reason == "bad_origin"
    assert policy.refusal("GET", "/metrics", {"Host": "studio.lan"}, {}) is None
    assert policy.refusal("GET", "/turns", {"Host": "studio.lan"}, {"token": TOKEN}).reason == "unauthorized"


@pytest.mark.parametrize("control,message", [
    ({"host": "0.0.0.0"}, "control.token: is required when control.host (0.0.0.0)"),
    ({"host": "192.168.1.5"}, "control.token: is required"),
    ({"token": "sh0rtT0k"}, "control.token: must be at least 16 characters"),
])
def test_config_requires_a_token_for_a_non_loopback_bind(tmp_path, control, message):
    cfg = write_config(tmp_path / "config.yaml", control=control)
    with pytest.raises(ConfigError) as err:
        load_config(cfg, env={})
    assert message in str(err.value)


def test_say_on_a_token_protected_broadcaster(tmp_path):
    """A real broadcaster on all interfaces: `broadcaster say` sends the token; a page's
    text/plain POST and a tokenless JSON POST are refused; the token never reaches the log."""
    port = free_port()
    cfg = write_config(tmp_path / "config.yaml", control={"host": "0.0.0.0", "port": port})
    env = run_env(BROADCASTER_CONTROL_TOKEN=TOKEN)
    proc = start_broadcaster("run", "-c", str(cfg), "--output", str(tmp_path / "x.flv"),
                             "--duration", "60", env=env)
    try:
        wait_on_air(port)
        say = json.dumps({"text": "hello"}).encode()
        assert raw_request(port, "POST", "/say", say, {"Content-Type": "text/plain"})[0] == 401
        assert raw_request(port, "POST", "/say", say, {"Content-Type": "application/json"})[0] == 401
        assert raw_request(port, "POST", "/say", say, {"Content-Type": "text/plain",
                                                       "Authorization": f"Bearer {TOKEN}"})[0] == 415
        result = run_broadcaster("say", "-c", str(cfg), "hello from the operator", env=env)
        assert result.returncode == 0, result.stderr
        # /say text is cleaned like chat: escape, bell and NUL characters never reach TTS
        dirty = json.dumps({"text": "\x1b[1mBreaking\x07 news\x00 continues here"}).encode()
        auth = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
        assert raw_request(port, "POST", "/say", dirty, auth)[0] == 202

        def said():
            status, body = raw_request(port, "GET", "/turns", b"", {"Authorization": f"Bearer {TOKEN}"})
            return [t["text"] for t in body["turns"] if t["kind"] == "say"] if status == 200 else []
        wait_for(lambda: len(said()) >= 2, 30, what="both /say lines to be taken up")
        assert said()[-1] == "[1mBreaking news continues here"
        # the studio page loads without the token, but what it reads and does needs it
        assert raw_request(port, "GET", "/studio/", b"", {})[0] == 200
        assert raw_request(port, "GET", "/studio/studio.js", b"", {})[0] == 200
        for path in ("/studio/state", "/studio/preview.jpg"):
            assert raw_request(port, "GET", path, b"", {})[0] == 401, path
        assert raw_request(port, "GET", "/studio/state", b"", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
        scene = json.dumps({"name": "default"}).encode()
        assert raw_request(port, "POST", "/studio/scene", scene, {"Content-Type": "application/json"})[0] == 401
    finally:
        out, err = stop(proc)
    assert proc.returncode == 0, err
    assert TOKEN not in out + err
