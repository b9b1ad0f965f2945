"""TextBlob's English sentiment (polarity, subjectivity), hand-ported for the serving hot path.

Why hand-written: /predict computes the sentiment of a movie overview on every request, and
``textblob.en.sentiment(text)`` costs ~120 us per overview: its tokenizer runs a dozen regex
passes over the text, and its ``assessments`` loop goes through ``lazydict._lazy`` on every
``self[w]`` / ``w in self`` lookup. This module is a port of the same algorithm from textblob
0.20.1 (``textblob/_text.py``: ``find_tokens`` and ``Sentiment.assessments``; textblob is MIT,
adapted from pattern, BSD): the lexicon is snapshotted once, lazily, into a plain dict with what
``assessments`` needs per word, and the tokenizer splits only the tokens that carry punctuation.
Rare inputs whose tokenization a regex pass would change (sarcasm marks "( ! )", emoticons split
by spaces such as ": )") are detected cheaply and tokenized by textblob itself. The float
arithmetic follows textblob's order exactly; tests/core/test_sentiment.py proves the output is
identical (``==``) on the bundled snapshot, hand-written edge cases and a random fuzz.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

_EOS = "END-OF-SENTENCE"  # textblob's paragraph-break token, dropped from every sentence


class _Tables:
    """Plain-dict snapshot of textblob's loaded English sentiment lexicon and tokenizer rules."""

    def __init__(self) -> None:
        from textblob import _text
        from textblob.en import sentiment

        self.textblob = sentiment
        self.tokenizer: Callable[[str], list[str]] = sentiment.tokenizer
        len(sentiment)  # forces textblob's lazy load of en-sentiment.xml
        modifiers = tuple(sentiment.modifiers)
        # word -> (polarity, subjectivity, intensity, is-modifier, "ends like a modifier")
        self.lexicon: dict[str, tuple[float, float, float, bool, bool]] = {}
        for word, by_pos in dict.items(sentiment):
            if None in by_pos:
                p, s, i = by_pos[None]
                is_mod = any(map(by_pos.__contains__, modifiers))
                self.lexicon[word] = (p, s, i, is_mod, bool(sentiment.modifier(word)))
        self.negations = frozenset(sentiment.negations)
        self.emoticons: dict[str, float] = {}
        for (_type, p), faces in _text.EMOTICONS.items():
            for face in faces:
                w = face.lower()
                if w.isalpha() is False and len(w) <= 5 and w not in _text.PUNCTUATION:
                    self.emoticons.setdefault(w, p)
        # Unknown words that can change state even with no pending negation or modifier.
        self.special = self.negations | {"!", "(!)"} | set(self.emoticons)
        punctuation = _text.PUNCTUATION.replace(".", "")
        self.punct = tuple(punctuation)
        self.lead = frozenset(punctuation)
        self.trail = frozenset(punctuation + ".")
        self.replace = dict(_text.replacements)
        self.abbreviations = frozenset(_text.ABBREVIATIONS)
        self.abbr_res = (_text.RE_ABBR1, _text.RE_ABBR2, _text.RE_ABBR3)
        # Any emoticon written with at least one inner space, followed by whitespace or the end:
        # the only case in which textblob's emoticon substitution changes the tokens.
        spaced = set()
        for faces in _text.EMOTICONS.values():
            for face in faces:
                for mask in range(1, 2 ** (len(face) - 1)):
                    spaced.add("".join(c + (" " if mask >> k & 1 else "") for k, c in enumerate(face)))
        self.spaced_emoticon = re.compile(rf"{_trie_regex(spaced)}(?=$|\s)")


def _trie_regex(words: Iterable[str]) -> str:
    """A regex alternation of words, factored by common prefixes so a failed match is cheap."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        alts = [re.escape(ch) + emit(sub) if ch else "" for ch, sub in node.items()]
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return emit(trie)


_tables: _Tables | None = None
_lock = threading.Lock()


def _get_tables() -> _Tables:
    global _tables
    if _tables is None:
        with _lock:
            if _tables is None:
                _tables = _Tables()
    return _tables


def _is_abbreviation(t: str, tb: _Tables) -> bool:
    """find_tokens' test for a period that is part of the token ("e.g.", "U.S.", "Mr.")."""
    if t in tb.abbreviations:
        return True
    # RE_ABBR1/2 need a letter then a period, RE_ABBR3 a capital A-Z first: skip them otherwise.
    if t[1:2] != "." and not ("A" <= t[0] <= "Z"):
        return False
    r1, r2, r3 = tb.abbr_res
    return r1.match(t) is not None or r2.match(t) is not None or r3.match(t) is not None


def _split_token(t: str, tokens: list[str], tb: _Tables) -> None:
    """Port of find_tokens' per-token loop: split leading/trailing punctuation and periods."""
    punctuation, replace = tb.punct, tb.replace
    tail = []
    while t.startswith(punctuation) and t not in replace:
        tokens.append(t[0])
        t = t[1:]
    while t.endswith(punctuation + (".",)) and t not in replace:
        if t.endswith(punctuation):
            tail.append(t[-1])
            t = t[:-1]
        if t.endswith("..."):
            tail.append("...")
            t = t[:-3].rstrip(".")
        if t.endswith("."):
            if _is_abbreviation(t, tb):
                break
            tail.append(t[-1])
            t = t[:-1]
    if t != "":
        tokens.append(t)
    tokens.extend(reversed(tail))


def _words(text: str, tb: _Tables) -> list[str]:
    """The lowercased words textblob's Sentiment assesses for a string, in order."""
    # Contractions: "'d" -> " 'd" etc. only add a space before a quote that the quote step below
    # isolates anyway, so only "n't" -> " n't" changes the split.
    s = text.replace("n't", " n't") if "n't" in text else text
    s = (
        s.replace("“", " “ ")
        .replace("”", " ” ")
        .replace("‘", " ‘ ")
        .replace("’", " ’ ")
        .replace("'", " ' ")
        .replace('"', ' " ')
    )
    if "," in s:
        # "X, " tokenizes exactly as "X , ": the trailing loop pops "," then goes on with X.
        s = s.replace(", ", " , ")
    tokens: list[str] = []
    append = tokens.append
    lead, trail = tb.lead, tb.trail
    for t in s.split():
        if t[-1] in trail:
            if len(t) == 1:
                append(t)  # a lone mark (or period) is its own token
            elif t[0] not in lead and t[-2] not in trail:
                # One trailing mark after a plain word: the common case of find_tokens' loop.
                if t[-1] != ".":
                    append(t[:-1])
                    append(t[-1])
                elif _is_abbreviation(t, tb):
                    append(t)
                else:
                    append(t[:-1])
                    append(".")
            else:
                _split_token(t, tokens, tb)
        elif t[0] in lead:
            _split_token(t, tokens, tb)
        else:
            append(t)
    if _EOS in text:
        tokens = [t for t in tokens if t != _EOS]
    joined = " ".join(tokens)
    if "( !" in joined or "! )" in joined or tb.spaced_emoticon.search(joined) is not None:
        # textblob's sarcasm/emoticon substitutions would merge tokens: let it tokenize.
        joined = " ".join(tb.tokenizer(text))
    return joined.lower().split()


def pattern_sentiment(text: str) -> tuple[float, float]:
    """TextBlob's (polarity, subjectivity) of a string: the same floats as textblob.en.sentiment, cheaper."""
    tb = _get_tables()
    if type(text) is not str:
        return tuple(tb.textblob(text)[:2])  # type: ignore[return-value]
    lexicon, negations, special, emoticons = tb.lexicon, tb.negations, tb.special, tb.emoticons
    a: list[list[float]] = []  # per assessment: [polarity, subjectivity, intensity, negated (-1/1)]
    m: tuple[float, float, float, bool, bool] | None = None  # preceding modifier's entry
    n: str | None = None  # preceding negation
    for w in _words(text, tb):
        e = lexicon.get(w)
        if e is not None:
            p, s, i, is_mod, _ly = e
            if m is None:
                a.append([p, s, i, 1])
            else:
                last = a[-1]
                last[0] = max(-1.0, min(p * last[2], +1.0))
                last[1] = max(-1.0, min(s * last[2], +1.0))
                last[2] = i
            if n is not None:
                last = a[-1]
                last[2] = 1.0 / last[2]
                last[3] = -1
            m = e if is_mod else None
            n = w if w in negations else None
            continue
        if n is None and m is None and w not in special:
            continue
        if w in negations:
            n = w
        elif n and len(w.strip("'")) > 1:
            n = None
        if n is not None and m is not None and m[4]:
            a[-1][3] = -1
            n = None
        elif m and len(w) > 2:
            m = None
        if w == "!" and len(a) > 0:
            a[-1][0] = max(-1.0, min(a[-1][0] * 1.25, +1.0))
        if w == "(!)":
            a.append([0.0, 1.0, 1.0, 1])
        face = emoticons.get(w)
        if face is not None:
            a.append([face, 1.0, 1.0, 1])
    # textblob's avg(): weight 1 per assessment, summed in order, divided by float(n or 1).
    polarity, subjectivity = 0, 0
    for p, s, _i, neg in a:
        polarity += 1 * (p * -0.5 if neg < 0 else p)
        subjectivity += 1 * s
    count = float(len(a) or 1)
    return polarity / count, subjectivity / count


# Sentiment is a pure function of the text and the most expensive feature of a request, and the same
# overview comes back often (a form submitted again, a batch rescored, a retry): remembering the last few
# thousand answers makes a repeat free. Bounded, so memory stays flat (~10 MB at 2,000-char texts).
SENTIMENT_CACHE_SIZE = 4096


@lru_cache(maxsize=SENTIMENT_CACHE_SIZE)
def sentiment(text: str) -> tuple[float, float]:
    """Polarity (-1..1) and subjectivity (0..1) of an English text, as TextBlob scores it (0, 0 when empty)."""
    if not text:
        return 0.0, 0.0
    polarity, subjectivity = pattern_sentiment(text)
    return float(polarity), float(subjectivity)
