"""The `llm` responder: AsyncOpenAI streaming chat completions against any OpenAI-compatible
endpoint (OpenAI, vLLM, Ollama, llama.cpp server).

Deltas are yielded as they arrive so TTS can start on the first sentence. A turn that times
out (no first token in time, or too long overall) or fails (HTTP error, connection, malformed
stream) ends gracefully: the configured fallback line is spoken if nothing was said yet (or
silence when it is empty), the failure is counted by kind, and nothing is raised.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import AsyncIterator

import openai
from openai import AsyncOpenAI

from broadcaster.chat.message import ChatMessage
from broadcaster.redact import redact, redact_url, register_secret
from broadcaster.reply.prompt import Turn, build_messages, system_prompt

log = logging.getLogger(__name__)

OPENAI_DEFAULT_BASE = "https://api.openai.com/v1"
FAILURE_KINDS = ("first_token_timeout", "total_timeout", "http_error", "connection_error",
                 "bad_stream", "other")


@dataclass(frozen=True)
class LlmSettings:
    """Settings under `responder.llm` (persona/rules come from the scene)."""

    model: str
    base_url: str | None = None        # None: OPENAI_BASE_URL, else api.openai.com
    api_key: str | None = field(default=None, repr=False)  # prefer api_key_env
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.7
    max_tokens: int = 160
    max_sentences: int = 3
    memory_turns: int = 6
    memory_chars: int = 600            # each remembered question/answer is cut to this
    first_token_timeout_s: float = 4.0
    total_timeout_s: float = 20.0
    fallback_line: str = "Sorry, I lost my train of thought there."   # "" = silence
    max_retries: int = 0               # a live turn cannot wait for the client's retries

    @classmethod
    def from_dict(cls, data: dict | None, where: str = "responder.llm") -> "LlmSettings":
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
        data.setdefault("model", os.environ.get("OPENAI_MODEL", ""))
        if not isinstance(data["model"], str) or not data["model"]:
            raise ValueError(f"{where}.model: set the model name (or OPENAI_MODEL)")
        for key in ("temperature", "first_token_timeout_s", "total_timeout_s"):
            if key in data and (isinstance(data[key], bool)
                                or not isinstance(data[key], (int, float)) or data[key] < 0):
                raise ValueError(f"{where}.{key}: expected a number >= 0, got {data[key]!r}")
        for key in ("max_tokens", "max_sentences", "memory_turns", "memory_chars",
                    "max_retries"):
            if key in data and (isinstance(data[key], bool) or not isinstance(data[key], int)
                                or data[key] < 0):
                raise ValueError(f"{where}.{key}: expected an integer >= 0, got {data[key]!r}")
        for key in ("base_url", "api_key", "api_key_env", "fallback_line"):
            if key in data and data[key] is not None and not isinstance(data[key], str):
                raise ValueError(f"{where}.{key}: expected a string, got {data[key]!r}")
        return cls(**data)


class LlmResponder:
    name = "llm"

    def __init__(self, settings: LlmSettings, persona: str = "", rules: str = "",
                 http_client=None) -> None:
        self.settings = settings
        base_url = settings.base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_BASE
        key = settings.api_key or (os.environ.get(settings.api_key_env, "")
                                   if settings.api_key_env else "")
        register_secret(key)
        if not key:
            if base_url.rstrip("/") == OPENAI_DEFAULT_BASE:
                raise ValueError(f"responder.llm: no API key; set {settings.api_key_env} "
                                 f"(or point base_url at a local server)")
            key = "no-key"  # local servers (Ollama, llama.cpp, vLLM) accept any key
        self.base_url = base_url
        self._client = AsyncOpenAI(api_key=key, base_url=base_url,
                                   timeout=settings.total_timeout_s + 1.0,
                                   max_retries=settings.max_retries, http_client=http_client)
        self._memory: deque[Turn] = deque(maxlen=settings.memory_turns)
        self.set_scene(persona, rules)
        self.counters: dict[str, int] = {"turns": 0, "ok": 0, "fallback_spoken": 0,
                                         **{k: 0 for k in FAILURE_KINDS}}
        self.last_first_token_s: float | None = None
        log.info("llm responder: model %s at %s", settings.model, redact_url(base_url))

    def set_scene(self, persona: str, rules: str = "") -> None:
        """Set the persona/rules (the system prompt); memory is kept."""
        self.system = system_prompt(persona, rules, self.settings.max_sentences)

    def memory(self) -> list[Turn]:
        return list(self._memory)

    def clear_memory(self) -> None:
        self._memory.clear()

    async def respond(self, msg: ChatMessage) -> AsyncIterator[str]:
        """Yield the reply's text deltas; on failure yield the fallback line or nothing."""
        cfg = self.settings
        self.counters["turns"] += 1
        start = time.monotonic()
        first_deadline = start + cfg.first_token_timeout_s
        total_deadline = start + cfg.total_timeout_s
        messages = build_messages(self.system, tuple(self._memory), msg)
        parts: list[str] = []
        failure: str | None = None
        stream = None
        self.last_first_token_s = None
        try:
            stream = await _until(self._client.chat.completions.create(
                model=cfg.model, messages=messages, stream=True, temperature=cfg.temperature,
                max_tokens=cfg.max_tokens), min(first_deadline, total_deadline))
            chunks = stream.__aiter__()
            while True:
                deadline = total_deadline if parts else min(first_deadline, total_deadline)
                try:
                    chunk = await _until(chunks.__anext__(), deadline)
                except StopAsyncIteration:
                    break
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta.content if chunk.choices[0].delta else None
                if delta:
                    if not parts:
                        self.last_first_token_s = time.monotonic() - start
                    parts.append(delta)
                    yield delta
        except asyncio.TimeoutError:
            failure = "total_timeout" if parts or time.monotonic() >= total_deadline \
                else "first_token_timeout"
        except openai.APIStatusError as exc:
            failure = "http_error"
            log.warning("llm: HTTP %s from the model server: %s", exc.status_code,
                        redact(str(exc))[:200])
        except openai.APITimeoutError:
            failure = "total_timeout"
        except openai.APIConnectionError as exc:
            failure = "connection_error"
            log.warning("llm: cannot reach %s: %s", redact_url(self.base_url),
                        redact(str(exc))[:200])
        except (ValueError, KeyError, TypeError, AttributeError,
                openai.APIResponseValidationError) as exc:
            failure = "bad_stream"
            log.warning("llm: malformed stream: %s: %s", type(exc).__name__,
                        redact(str(exc))[:200])
        except Exception as exc:  # noqa: BLE001 - a responder never raises into the caller
            failure = "other"
            log.warning("llm: %s: %s", type(exc).__name__, redact(str(exc))[:200])
        finally:
            if stream is not None:
                try:
                    await asyncio.wait_for(stream.close(), 1.0)
                except BaseException:  # noqa: BLE001 - closing is best effort
                    pass
        if failure:
            self.counters[failure] += 1
            if failure.endswith("timeout"):
                log.warning("llm: %s after %.2f s", failure, time.monotonic() - start)
            if not parts and cfg.fallback_line:
                self.counters["fallback_spoken"] += 1
                yield cfg.fallback_line
        else:
            self.counters["ok"] += 1
        if parts:
            cut = cfg.memory_chars
            self._memory.append(Turn(msg.user, msg.text[:cut], "".join(parts)[:cut]))

    async def close(self) -> None:
        await self._client.close()


async def _until(aw, deadline: float):
    """Await aw until the monotonic deadline; raise asyncio.TimeoutError after it."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        if asyncio.iscoroutine(aw):
            aw.close()
        raise asyncio.TimeoutError
    return await asyncio.wait_for(aw, remaining)
