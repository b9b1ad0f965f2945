"""Which overviews get translated, and how a translator failure or hang degrades."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest

from services.serve.translate import OverviewTranslator, TranslationResult, _chunks, needs_translation
from tests.serve_fixtures import FakeTranslator

ENGLISH = "A retired detective is pulled back into the case that ruined his career, with his daughter."


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        (ENGLISH, "en", False),
        (ENGLISH, "fr", False),  # TMDB's English overview of a French film: nothing to translate
        ("Un détective à la retraite reprend l'enquête qui a brisé sa carrière, avec sa fille.", "fr", True),
        ("Un detective retirado vuelve al caso que arruinó su carrera junto a su hija.", "en", True),
        ("退休的侦探重新调查毁掉他职业生涯的案件。", "en", True),
        ("Amour fou", "fr", True),  # too short to judge: the film's language decides
        ("Love story", "en", False),
    ],
)
def test_needs_translation(text: str, language: str, expected: bool) -> None:
    assert needs_translation(text, language) is expected


def test_translations_are_remembered_and_failures_are_not() -> None:
    backend = FakeTranslator({"Bonjour tout le monde, il fait beau et chaud aujourd'hui à Paris.": "Hello"})
    translator = OverviewTranslator(backend, timeout_s=1)
    text = "Bonjour tout le monde, il fait beau et chaud aujourd'hui à Paris."
    first = translator.translate_many([(text, "fr")])
    second = translator.translate_many([(text, "fr")])
    assert first == second and first[0].text == "Hello" and first[0].translated
    assert len(backend.calls) == 1
    translator.close()


class HungTranslator:
    """A translator whose every call hangs until the test opens its gate (a network dropping packets)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.answered = 0

    def translate(self, text: str) -> str:
        """Wait for the gate (at most a minute, so a broken test cannot hang the suite), then answer."""
        self.gate.wait(timeout=60)
        self.answered += 1
        return "translated"


def test_one_deadline_covers_the_whole_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = HungTranslator()
    translator = OverviewTranslator(backend, timeout_s=0.3, max_workers=4)
    waits: list[float] = []
    collect = translator._collect

    def recording(text: str, future: Future[str], timeout: float) -> TranslationResult:
        waits.append(timeout)
        return collect(text, future, timeout)

    monkeypatch.setattr(translator, "_collect", recording)
    texts = [(f"Le film numéro {i} raconte une histoire d'amour à Paris.", "fr") for i in range(8)]
    results = translator.translate_many(texts)
    answered_before_return = backend.answered  # the gate is still shut: nothing can have answered
    backend.gate.set()
    translator.close()
    assert answered_before_return == 0
    assert all(not r.translated and "timed out" in (r.note or "") for r in results)
    assert [r.text for r in results] == [t for t, _ in texts]
    # One deadline: the eight waits add up to the timeout (a deadline per text would be 8 x 0.3 s).
    assert len(waits) == 8 and sum(waits) <= 0.3, waits


def test_long_texts_are_cut_at_whitespace_for_the_5000_character_limit() -> None:
    text = " ".join(["mot"] * 4000)  # 15,999 characters
    chunks = _chunks(text)
    assert all(len(c) <= 4500 for c in chunks)
    assert " ".join(chunks) == text
