"""Streaming sentence splitter: turns LLM text deltas into speakable sentences as soon as they end.

Why: the TTS stage must start speaking the first sentence while later text is still streaming,
and very long sentences are cut at clause boundaries so no single synthesis call gets slow.
"""
from __future__ import annotations

import re

# Terminators that end a sentence only when followed by whitespace (or end of text).
_LATIN_ENDERS = ".!?…"
# Terminators that end a sentence at once (CJK full-width punctuation needs no space after).
_CJK_ENDERS = "。！？"
# Clause boundaries used to cut long sentences.
_CLAUSE_MARKS = ",;:，；、："
# Closing characters that belong to the sentence they follow.
_CLOSERS = "\"'”’)]}）」』》"
_ABBREVIATIONS = frozenset(
    ["mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "e.g", "i.e", "jr", "sr", "no", "approx"]
)
_WORD_BEFORE = re.compile(r"([A-Za-z.]+)$")
# Han characters: in Chinese text no space follows a sentence end, so a half-width ! ? .
# straight before a Han character ends the sentence.
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# What a first fragment is measured in: a Han character, or a Latin word or number.
_UNIT = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[A-Za-z0-9][A-Za-z0-9.'-]*")
_FRAGMENT_MIN_UNITS = 4


class SentenceSplitter:
    """Feed text deltas with feed(); get complete sentences back; call flush() at the end.

    max_chars: a sentence longer than this is cut at the last clause boundary (or, failing that,
    the last space) found after min_chars characters.
    """

    def __init__(self, max_chars: int = 140, min_chars: int = 12) -> None:
        if max_chars <= min_chars or min_chars < 1:
            raise ValueError(f"SentenceSplitter: need 1 <= min_chars < max_chars, got {min_chars}, {max_chars}")
        self.max_chars = max_chars
        self.min_chars = min_chars
        self._buf = ""

    def feed(self, delta: str) -> list[str]:
        """Add streamed text; return the sentences that are now complete (maybe none)."""
        self._buf += delta
        out: list[str] = []
        while True:
            cut = self._find_sentence_end(final=False)
            if cut is None:
                cut = self._find_long_cut()
            if cut is None:
                break
            self._emit(cut, out)
        return out

    def flush(self) -> list[str]:
        """End of text: return everything still buffered, split the same way."""
        out: list[str] = []
        while True:
            cut = self._find_sentence_end(final=True)
            if cut is None:
                cut = self._find_long_cut()
            if cut is None:
                break
            self._emit(cut, out)
        self._emit(len(self._buf), out)
        return out

    def reset(self) -> None:
        """Drop buffered text (used when a line is interrupted)."""
        self._buf = ""

    def _emit(self, cut: int, out: list[str]) -> None:
        piece, self._buf = self._buf[:cut].strip(), self._buf[cut:]
        if any(ch.isalnum() for ch in piece):
            out.append(piece)
        elif piece and out:
            out[-1] += piece  # stray punctuation belongs to the previous sentence

    def _find_sentence_end(self, final: bool) -> int | None:
        buf = self._buf
        n = len(buf)
        i = 0
        while i < n:
            ch = buf[i]
            if ch == "\n":
                if buf[:i].strip():
                    return i + 1
            elif ch in _CJK_ENDERS:
                j = self._skip_closers(i + 1)
                if j < n or final:
                    return j
                return None  # a closer may still arrive
            elif ch in _LATIN_ENDERS:
                j = i + 1
                while j < n and buf[j] in _LATIN_ENDERS:
                    j += 1
                j = self._skip_closers(j)
                if j >= n:
                    if final and not self._is_abbreviation(i):
                        return j
                    return None  # need the next character to decide
                if buf[j].isspace() and not self._is_abbreviation(i):
                    return j
                if (_HAN.match(buf[j]) and ch in "!?." and not self._is_abbreviation(i)
                        and not self._is_initialism(i)):
                    return j
                i = j
                continue
            i += 1
        return None

    def _skip_closers(self, j: int) -> int:
        while j < len(self._buf) and self._buf[j] in _CLOSERS:
            j += 1
        return j

    def _is_abbreviation(self, dot_index: int) -> bool:
        if self._buf[dot_index] != ".":
            return False
        m = _WORD_BEFORE.search(self._buf[:dot_index])
        if not m:
            return False
        word = m.group(1).lower()
        return word in _ABBREVIATIONS

    def _is_initialism(self, dot_index: int) -> bool:
        """U.S. / e.g.: the dot ends a run of single letters joined by dots."""
        m = _WORD_BEFORE.search(self._buf[:dot_index])
        return bool(m) and "." in m.group(1)

    def _find_long_cut(self) -> int | None:
        buf = self._buf
        if len(buf) <= self.max_chars:
            return None
        window = buf[: self.max_chars]
        best = -1
        for k in range(len(window) - 1, self.min_chars - 1, -1):
            if window[k] in _CLAUSE_MARKS:
                best = k + 1
                break
        if best < 0:
            space = window.rfind(" ", self.min_chars)
            best = space if space > 0 else self.max_chars
        return best


def clauses(sentence: str) -> list[str]:
    """A sentence cut after every clause mark and sentence end, the marks kept on the left:
    engines that synthesize clause by clause (and pause between them) use it."""
    out, start = [], 0
    for k, ch in enumerate(sentence):
        if ch in _CLAUSE_MARKS or ch in _CJK_ENDERS or ch in _LATIN_ENDERS:
            end = k + 1
            while end < len(sentence) and sentence[end] in _CLOSERS:
                end += 1
            if not _inside_number(sentence, k):
                _add_clause(out, sentence[start:end])
                start = end
    _add_clause(out, sentence[start:])
    return out


def _add_clause(out: list[str], piece: str) -> None:
    piece = piece.strip()
    if any(ch.isalnum() for ch in piece):
        out.append(piece)
    elif piece and out:
        out[-1] += piece  # punctuation alone belongs to the clause before it


def _inside_number(text: str, k: int) -> bool:
    """The mark at k sits between two digits (3.5, 1,000, 10:30): not a clause boundary."""
    return 0 < k < len(text) - 1 and text[k - 1].isdigit() and text[k + 1].isdigit()


def split_first_fragment(sentence: str, max_words: int = 6) -> list[str]:
    """Cut a line's first sentence in two so its first part is synthesized sooner.

    Only when it has more than max_words words: at the first clause mark after two or more
    words, else after half the words (at least three). Text with Chinese in it is cut only at
    a clause mark with four units (Han characters, Latin words) on each side.
    """
    words = sentence.split()
    if len(words) <= 1 or _HAN.search(sentence):
        for k, ch in enumerate(sentence):
            if (ch in _CLAUSE_MARKS and not _inside_number(sentence, k)
                    and len(_UNIT.findall(sentence[:k])) >= _FRAGMENT_MIN_UNITS
                    and len(_UNIT.findall(sentence[k + 1:])) >= _FRAGMENT_MIN_UNITS):
                return [sentence[: k + 1].strip(), sentence[k + 1:].strip()]
        return [sentence]
    if len(words) <= max_words:
        return [sentence]
    for k in range(1, len(words) - 2):
        if words[k][-1] in _CLAUSE_MARKS:
            return [" ".join(words[: k + 1]), " ".join(words[k + 1:])]
    cut = max(3, (len(words) + 1) // 2)
    return [" ".join(words[:cut]), " ".join(words[cut:])]
