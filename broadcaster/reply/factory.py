"""Build the responder a scene asks for from the `responder:` config mapping.

    responder:
      type: llm            # llm | read-aloud   (`run --responder script` turns chat answers off)
      llm: {model: ..., base_url: ..., api_key_env: OPENAI_API_KEY, ...}   # LlmSettings
      read_aloud: {template: "{user} says: {text}", paid_template: ...}
"""

from __future__ import annotations

from broadcaster.reply.read_aloud import ReadAloudResponder
from broadcaster.reply.responder import Responder

TYPES = ("llm", "read-aloud")


def make_responder(config: dict | None, *, persona: str = "", rules: str = "",
                   override: str | None = None, where: str = "responder") -> Responder:
    """The responder the `responder:` mapping asks for.

    `override` is the CLI's --responder; persona/rules come from the scene.
    """
    config = dict(config or {})
    unknown = sorted(set(config) - {"type", "llm", "read_aloud"})
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: llm, read_aloud, type")
    kind = override or config.get("type", "read-aloud")
    if kind == "llm":
        # imported here: the read-aloud default must work without the openai package
        from broadcaster.reply.llm import LlmResponder, LlmSettings
        return LlmResponder(LlmSettings.from_dict(config.get("llm"), f"{where}.llm"),
                            persona=persona, rules=rules)
    if kind == "read-aloud":
        ra = dict(config.get("read_aloud") or {})
        bad = sorted(set(ra) - {"template", "paid_template"})
        if bad:
            raise ValueError(f"{where}.read_aloud: unknown key(s) {bad}; "
                             f"known: paid_template, template")
        return ReadAloudResponder(**ra)
    raise ValueError(f"{where}.type: {kind!r} is not one of {', '.join(TYPES)} "
                     f"(the 'script' responder is built by the core)")
