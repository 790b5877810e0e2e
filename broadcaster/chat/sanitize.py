"""Text cleaning for chat: what reaches the overlay, the TTS and the LLM must be plain text.

Control characters and invisible formatting (zero-width spaces and joiners, bidi overrides and
isolates, Unicode tag characters, BOM) are removed: they can hide blocked words, reorder what
the overlay shows, or smuggle text a human moderator cannot see.
"""

from __future__ import annotations

import re
import unicodedata

# Unicode categories that are never wanted in a spoken/overlaid chat line:
# Cc control, Cf format (ZWSP, ZWJ, LRO/RLO/PDF, LRI/RLI/FSI/PDI, tags, BOM), Co private use,
# Cs surrogates, Cn unassigned.
_DROP_CATEGORIES = {"Cc", "Cf", "Co", "Cs", "Cn"}
_SPACE_LIKE = re.compile(r"[\s\u2028\u2029]+")
_REPEATS = re.compile(r"(.)\1{2,}")
_NON_WORD = re.compile(r"[^\w\s]+")


def clean_text(text: str) -> str:
    """NFC-normalise, turn line breaks/tabs into spaces, drop invisible/control chars, trim."""
    text = unicodedata.normalize("NFC", text)
    text = _SPACE_LIKE.sub(" ", text)
    kept = [ch for ch in text if unicodedata.category(ch) not in _DROP_CATEGORIES]
    return _SPACE_LIKE.sub(" ", "".join(kept)).strip()


def dedup_key(text: str) -> str:
    """A form under which near-identical messages collide.

    Case, punctuation, spacing and stretched letters ("hiiiii" == "hii") are ignored.
    """
    folded = text.casefold()
    folded = _NON_WORD.sub("", folded)
    folded = "".join(folded.split())
    return _REPEATS.sub(r"\1\1", folded)


def compile_word_pattern(words: list[str] | tuple[str, ...]) -> re.Pattern[str] | None:
    """Case-insensitive whole-word matcher for a blocklist (phrases allowed), or None if empty."""
    cleaned = sorted({clean_text(w).casefold() for w in words if clean_text(w)}, key=len,
                     reverse=True)
    if not cleaned:
        return None
    alternatives = "|".join(r"\s+".join(re.escape(part) for part in w.split()) for w in cleaned)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
