"""Overview translation to English, bounded by a deadline so a slow translator never stalls a request."""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from time import monotonic
from typing import Protocol

log = logging.getLogger(__name__)

# Frequent English function words: an English overview is full of them, a French or Spanish one is not.
# fmt: off
_ENGLISH_WORDS = frozenset({
    "the", "a", "an", "and", "of", "to", "in", "is", "are", "was", "his", "her", "their", "its", "who",
    "with", "for", "on", "at", "by", "from", "as", "that", "this", "it", "he", "she", "they", "when",
    "after", "but", "be", "has", "have", "into", "while", "about", "must", "will", "one", "two", "out",
    "up", "him", "them",
})
# fmt: on
_WORD = re.compile(r"[a-z']+")
_GOOGLE_MAX_CHARS = 4500  # deep-translator refuses more than 5000 characters per call


class Translator(Protocol):
    """Anything that turns a text in any language into English (may raise, may be slow)."""

    def translate(self, text: str) -> str:
        """The English text."""
        ...


class GoogleBackend:
    """Google Translate through deep-translator (source auto, target en).

    base_url points the same client at another Google-compatible endpoint (a proxy, or a local
    stand-in in tests); None keeps the library's own.
    """

    def __init__(self, base_url: str | None = None) -> None:
        self.base_url = base_url

    def translate(self, text: str) -> str:
        """The English text, translated chunk by chunk (the library caps one call at 5000 characters)."""
        out = [self._client().translate(c) for c in _chunks(text)]
        return " ".join(part for part in out if part)

    def _client(self):  # noqa: ANN202 - deep_translator is imported lazily
        from deep_translator import GoogleTranslator

        # A new instance per call: the library keeps request parameters on the instance (not thread-safe).
        client = GoogleTranslator(source="auto", target="en")
        if self.base_url:
            client._base_url = self.base_url  # the library has no public knob for its endpoint
        return client


def _chunks(text: str, size: int = _GOOGLE_MAX_CHARS) -> list[str]:
    """Pieces of at most size characters, cut at whitespace where possible."""
    chunks, rest = [], text.strip()
    while len(rest) > size:
        cut = rest.rfind(" ", 0, size)
        cut = cut if cut > size // 2 else size
        chunks.append(rest[:cut])
        rest = rest[cut:].lstrip()
    return [*chunks, rest] if rest else chunks


def looks_english(text: str) -> bool | None:
    """True/False when the text clearly is/is not English, None when it is too short to tell."""
    if not text.isascii():  # only then count letters: most overviews are plain ASCII
        letters = [c for c in text if c.isalpha()]
        if not letters:
            return True
        if sum(not c.isascii() for c in letters) / len(letters) > 0.2:
            return False
    words = _WORD.findall(text.lower())
    if len(words) < 6:
        return None
    return sum(w in _ENGLISH_WORDS for w in words) / len(words) >= 0.12


def needs_translation(text: str, original_language: str) -> bool:
    """Whether an overview should be translated: judged on the text, the film's language breaks ties."""
    if original_language == "en" and text.isascii():
        return False
    verdict = looks_english(text)
    return original_language != "en" if verdict is None else not verdict


@dataclass(frozen=True)
class TranslationResult:
    """The text to featurize, whether it was translated, and a note for the caller when something failed."""

    text: str
    translated: bool
    note: str | None = None


class OverviewTranslator:
    """Translates non-English overviews with a deadline per request, remembering recent answers."""

    def __init__(
        self, backend: Translator, timeout_s: float, max_workers: int = 4, cache_size: int = 2048
    ) -> None:
        self.backend = backend
        self.timeout_s = timeout_s
        self.cache_size = cache_size
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="translate")
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def translate_many(self, items: Sequence[tuple[str, str]]) -> list[TranslationResult]:
        """(overview, original_language) pairs to results, all translated in parallel under one deadline."""
        results: list[TranslationResult | None] = [None] * len(items)
        pending: dict[int, Future[str]] = {}
        for i, (text, language) in enumerate(items):
            if not needs_translation(text, language):
                results[i] = TranslationResult(text, False)
            elif (cached := self._cached(text)) is not None:
                results[i] = TranslationResult(cached, True)
            else:
                pending[i] = self._pool.submit(self.backend.translate, text)
        deadline = monotonic() + self.timeout_s
        for i, future in pending.items():
            text = items[i][0]
            results[i] = self._collect(text, future, max(0.0, deadline - monotonic()))
        return [r for r in results if r is not None]

    def must_wait(self, items: Sequence[tuple[str, str]]) -> bool:
        """Whether translate_many would call the translator (and so may wait on the network)."""
        return any(needs_translation(t, lang) and self._cached(t) is None for t, lang in items)

    def _collect(self, text: str, future: Future[str], timeout: float) -> TranslationResult:
        try:
            english = future.result(timeout=timeout)
        except FutureTimeout:
            future.cancel()  # drops it if still queued; a call already running finishes on its own
            log.warning("translation timed out after %.1f s; using the original text", self.timeout_s)
            return TranslationResult(
                text, False, f"translation timed out after {self.timeout_s:g} s; the original text was used"
            )
        except Exception as exc:  # noqa: BLE001 - any translator failure degrades to the original text
            log.warning("translation failed (%s); using the original text", type(exc).__name__)
            return TranslationResult(
                text, False, f"translation failed ({type(exc).__name__}); the original text was used"
            )
        if not isinstance(english, str) or not english.strip():
            return TranslationResult(text, False, "translation came back empty; the original text was used")
        self._remember(text, english)
        return TranslationResult(english, english.strip() != text.strip())

    def _cached(self, text: str) -> str | None:
        with self._lock:
            if text in self._cache:
                self._cache.move_to_end(text)
                return self._cache[text]
        return None

    def _remember(self, text: str, english: str) -> None:
        with self._lock:
            self._cache[text] = english
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def close(self) -> None:
        """Stop the worker threads without waiting for a hung call."""
        self._pool.shutdown(wait=False, cancel_futures=True)
