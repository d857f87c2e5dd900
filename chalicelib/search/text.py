"""Text analysis for search, alike for Chinese and Latin text.

Normalise (NFKC, case-fold, punctuation and symbols to spaces), then split into runs: Latin
letters and digits give whole words; CJK runs (Han, kana, Hangul) give overlapping bigrams,
and every CJK character is also indexed alone so one-character queries find it. A query is
analysed the same way, except a CJK run of two or more characters gives only its bigrams.
"""
from __future__ import annotations

import unicodedata

# Words shorter than this carry no meaning in Latin text ("a", "x"); CJK has no such limit.
MIN_WORD = 1
MAX_TERM_CHARS = 40


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2A6DF
            or 0xF900 <= code <= 0xFAFF or 0x3040 <= code <= 0x30FF or 0xAC00 <= code <= 0xD7AF
            or 0x31F0 <= code <= 0x31FF)


def normalise(text: str) -> str:
    """NFKC, case-folded, with every character that is not a letter or digit a space."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch if ch.isalnum() else " " for ch in folded)


def _runs(text: str) -> list[tuple[bool, str]]:
    """Maximal runs of CJK characters or of other letters/digits: (is_cjk, run)."""
    runs: list[tuple[bool, str]] = []
    current: list[str] = []
    cjk = False
    for ch in normalise(text):
        if ch == " ":
            if current:
                runs.append((cjk, "".join(current)))
            current = []
            continue
        is_cjk = _is_cjk(ch)
        if current and is_cjk != cjk:
            runs.append((cjk, "".join(current)))
            current = []
        cjk = is_cjk
        current.append(ch)
    if current:
        runs.append((cjk, "".join(current)))
    return runs


def _bigrams(run: str) -> list[str]:
    return [run[i:i + 2] for i in range(len(run) - 1)]


def document_terms(text: str) -> set[str]:
    """Every term a document is findable by."""
    terms: set[str] = set()
    for cjk, run in _runs(text):
        if cjk:
            terms.update(run)
            terms.update(_bigrams(run))
        elif len(run) >= MIN_WORD:
            terms.add(run[:MAX_TERM_CHARS])
    return terms


def query_terms(text: str) -> list[str]:
    """The distinct terms of a query, in order of appearance."""
    terms: list[str] = []
    for cjk, run in _runs(text):
        parts = (_bigrams(run) or [run]) if cjk else [run[:MAX_TERM_CHARS]]
        for term in parts:
            if term not in terms:
                terms.append(term)
    return terms
