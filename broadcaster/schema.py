"""Reading typed values out of parsed YAML with errors that name the file and the key.

Every config and scene reader goes through `Section`, so each invalid value produces one
ConfigError of the form "FILE: a.b.c: what is wrong (allowed: ...)".
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

from broadcaster.errors import ConfigError

_COLOR_NAMES = {
    "black": "#000000", "white": "#ffffff", "red": "#ff0000", "green": "#00ff00",
    "blue": "#0000ff", "yellow": "#ffff00", "cyan": "#00ffff", "magenta": "#ff00ff",
    "gray": "#808080", "grey": "#808080", "transparent": "#00000000",
}
_HEX = re.compile(r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
MAX_YAML_DEPTH = 32
MAX_YAML_BYTES = 1024 * 1024


def is_number(value: Any) -> bool:
    """True for an int or a finite float (never a bool, .nan or .inf): every number read from
    a config, scene or request goes through here, since NaN passes every range comparison."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value)


class _BoundedLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses aliases (a few anchors can expand to gigabytes) and
    nesting deeper than MAX_YAML_DEPTH (which would end in a RecursionError)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed here; write the value out",
                event.start_mark)
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_YAML_DEPTH} levels",
                    self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def parse_yaml(text: str) -> Any:
    """yaml.safe_load without aliases or deep nesting; raises yaml.YAMLError."""
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_yaml_mapping(path: Path) -> dict:
    """Parse a YAML file that must hold a mapping; syntax errors name the line."""
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise ConfigError(str(path), "", f"file is over {MAX_YAML_BYTES // 1024} KiB")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "", "not UTF-8 text") from None
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        problem = problem[:200]
        raise ConfigError(str(path), "", f"invalid YAML: {where}{problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", f"must be a mapping of keys to values, got {_kind(data)}")
    return data


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {_clip(value)!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


class Section:
    """A mapping at a known place (file + dotted key) with typed getters."""

    def __init__(self, data: Any, source: str, key: str = ""):
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(source, key or "(top level)", f"must be a mapping, got {_kind(data)}")
        self.data = data
        self.source = source
        self.key = key

    def path(self, name: str | int) -> str:
        if isinstance(name, int):
            return f"{self.key}[{name}]"
        return f"{self.key}.{name}" if self.key else name

    def error(self, name: str, message: str) -> ConfigError:
        return ConfigError(self.source, self.path(name), message)

    def allow_only(self, names: Iterable[str]) -> None:
        allowed = sorted(set(names))
        for name in self.data:
            if name not in allowed:
                raise self.error(str(name), f"unknown key (allowed here: {', '.join(allowed)})")

    def has(self, name: str) -> bool:
        return name in self.data and self.data[name] is not None

    def section(self, name: str) -> "Section":
        return Section(self.data.get(name), self.source, self.path(name))

    def raw(self, name: str, default: Any = None) -> Any:
        value = self.data.get(name)
        return default if value is None else value

    def number(self, name: str, default: float | None = None, *, minimum: float | None = None,
               maximum: float | None = None, integer: bool = False) -> Any:
        value = self.data.get(name)
        if value is None:
            if default is None:
                raise self.error(name, "is required")
            return default
        if not is_number(value):
            kind = "a whole number" if integer else "a number"
            raise self.error(name, f"must be {kind}, got {_kind(value)}")
        if integer and (isinstance(value, float) and not value.is_integer()):
            raise self.error(name, f"must be a whole number, got {value!r}")
        if minimum is not None and value < minimum or maximum is not None and value > maximum:
            raise self.error(name, f"must be between {_fmt(minimum)} and {_fmt(maximum)}, got {value!r}")
        return int(value) if integer else float(value)

    def integer(self, name: str, default: int | None = None, *, minimum: int | None = None,
                maximum: int | None = None) -> int:
        return self.number(name, default, minimum=minimum, maximum=maximum, integer=True)

    def text(self, name: str, default: str | None = None, *, choices: Iterable[str] | None = None,
             allow_empty: bool = False) -> str:
        value = self.data.get(name)
        if value is None:
            if default is None:
                raise self.error(name, "is required")
            return default
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise self.error(name, f"must be text, got {_kind(value)}")
        if not allow_empty and not value.strip():
            raise self.error(name, "must not be empty")
        if choices is not None:
            options = list(choices)
            if value not in options:
                raise self.error(name, f"must be one of {', '.join(options)}, got {_clip(value)!r}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.data.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(name, f"must be true or false, got {_kind(value)}")
        return value

    def color(self, name: str, default: str | None = None) -> tuple[int, int, int, int]:
        value = self.text(name, default)
        return parse_color(value, lambda msg: self.error(name, msg))

    def items(self, name: str) -> list["Section | Any"]:
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(name, f"must be a list, got {_kind(value)}")
        return value


def _fmt(value: float | None) -> str:
    if value is None:
        return "any"
    return str(int(value)) if float(value).is_integer() else str(value)


def parse_color(value: str, fail) -> tuple[int, int, int, int]:
    """'#rgb', '#rrggbb', '#rrggbbaa' or a basic name -> RGBA bytes."""
    text = _COLOR_NAMES.get(value.strip().lower(), value.strip())
    if not _HEX.match(text):
        raise fail(f"must be a colour like '#1e90ff', '#1e90ff80' or a basic name, got {_clip(value)!r}")
    digits = text[1:]
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    if len(digits) == 6:
        digits += "ff"
    return tuple(int(digits[i:i + 2], 16) for i in range(0, 8, 2))  # type: ignore[return-value]
