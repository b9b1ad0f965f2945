"""services.core.sentiment.pattern_sentiment returns exactly textblob.en.sentiment's floats."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
from textblob import _text
from textblob.en import sentiment as textblob_sentiment

from services.core import sentiment as fast
from services.core.sentiment import pattern_sentiment
from services.train.movies.snapshot import load_movies

ROOT = Path(__file__).resolve().parents[2]


def _mismatches(texts: list[str]) -> list[tuple[str, tuple[float, float], tuple[float, float]]]:
    out = []
    for text in texts:
        expected = tuple(textblob_sentiment(text)[:2])
        got = pattern_sentiment(text)
        if got != expected or type(got) is not tuple:
            out.append((text, got, expected))
    return out


@pytest.fixture(scope="module")
def fallbacks(request: pytest.FixtureRequest) -> list[str]:
    """Texts the module handed to textblob's own tokenizer (recorded for the whole module)."""
    tables = fast._get_tables()
    real = tables.tokenizer
    calls: list[str] = []

    def counting(text: str) -> list[str]:
        calls.append(text)
        return real(text)

    tables.tokenizer = counting
    request.addfinalizer(lambda: setattr(tables, "tokenizer", real))
    return calls


def test_import_does_no_io() -> None:
    code = "import services.core.sentiment as m, sys; assert m._tables is None; assert 'textblob.en' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_snapshot_texts_identical(fallbacks: list[str]) -> None:
    movies = load_movies(ROOT / "data" / "snapshot")
    assert len(movies) > 4000
    texts = [m.get(k) or "" for m in movies for k in ("overview", "title", "tagline")]
    assert sum(1 for t in texts if t) > 9000
    assert _mismatches(texts) == []
    polarities = [pattern_sentiment(t)[0] for t in texts[::3]]
    assert sum(1 for p in polarities if p != 0.0) > 2000


EDGE_CASES = [
    "",
    " ",
    " \t\n\r\n  ",
    "not good",
    "not a good film",
    "never really bad",
    "no, not bad at all",
    "isn't good",
    "very very good",
    "really not good",
    "very not good",
    "badly not good",
    "great!",
    "great!!",
    "great !!!",
    "! great",
    "(!)",
    "( ! )",
    "(! )",
    "( !)",
    "what a film (!)",
    "good ( ! ) bad",
    ":)",
    ":-(",
    "<3",
    ":'(",
    "xD",
    "XD",
    "X D",
    "Malcolm X D",
    "8-)",
    "8 - )",
    ": )",
    ": - (",
    "happy :) sad :(",
    "lol ;-) ok",
    "o.O",
    "Pluto. Once",
    "Go to Pluto. Often bad.",
    "the film (1998) was good",
    "isn't",
    "don't",
    "I'd",
    "we'll",
    "it's",
    "they're great, we've won, I'm happy",
    "“great” ‘bad’ movie’s ending",
    "\"good\" 'bad'",
    "e.g. good",
    "the U.S. army",
    "Mr. Smith is nice.",
    "apples, pears, etc. are good",
    "wait... what",
    "wait.... what.. good.",
    "first good\n\nsecond bad",
    "first good\r\n\r\nsecond bad\r\nthird",
    "END-OF-SENTENCE good",
    "(END-OF-SENTENCE) bad",
    "In 1995, 3 men won 2nd prize; 21st-century 13th good.",
    "Un film magnifique, très émouvant et drôle.",
    "Ein wunderbarer Film, nicht schlecht!",
    "素晴らしい映画です。とても良い！",
    "Прекрасный фильм, очень хороший.",
    "great film 🎬🍿 😀 ❤️ good",
    "ΟΔΟΣ ΚΑΛΟΣ. Σ good",
    "İstanbul is good",
    "good\u00a0bad\u2028nice\u3000evil\x1cfine\x85ok",
    "T. De Smedt was Mr. good",
    "not A. good",
    "not U.S. good",
    "never Mrs. bad",
    "not ok. good",
    "very Hmm. good",
    "very ed. good",
    "really cf. bad",
    "a.m. p.m. good. A. B.C. Dr. Mrs. nice.",
    "Good (really good), bad [very bad] {not bad} `nice` @great #awful $best ^worst &ok *fine",
    "--good-- ..bad.. ,nice, ;evil; ?great? ~happy~ _sad_ |ok| =fine=",
    "very good. Really! Not... bad?! (yes).",
    ("A good film is never really bad, isn't it? " * 75)[:3000],
]


def test_edge_cases_identical(fallbacks: list[str]) -> None:
    assert len(EDGE_CASES[-1]) == 3000
    assert _mismatches(EDGE_CASES) == []
    assert pattern_sentiment("not good") != pattern_sentiment("good")
    assert pattern_sentiment("great!") != pattern_sentiment("great")


def _fuzz_corpus(n: int, seed: int = 20261207) -> list[str]:
    rng = random.Random(seed)
    lexicon = sorted(k for k in dict.keys(textblob_sentiment) if k)
    words = rng.sample(lexicon, 400)
    faces = sorted({f for fs in _text.EMOTICONS.values() for f in fs})
    spaced = [" ".join(f) for f in faces[::3]] + [f[0] + " " + f[1:] for f in faces[1::3]]
    vocab = {
        "lexicon": words + [w.capitalize() for w in words[:100]] + [w.upper() for w in words[:40]],
        "negation": ["not", "no", "never", "Not", "NEVER", "n't", "isn't", "don't", "can't"],
        "modifier": ["very", "really", "extremely", "badly", "truly", "so", "Very", "awfully"],
        "filler": ["a", "the", "is", "it", "I", "of", "film", "movie", "x", "Σ", "ΟΔΟΣ", "1998", "8"],
        "punct": list(".,;:!?()[]{}`'\"@#$^&*+-|=~_") + ["...", "!!", "?!", "(!)", "( ! )", "…"],
        "quote": ["“", "”", "‘", "’", "'s", "'d", "'ll", "'re", "'ve", "'m", "n't"],
        "emoticon": faces + spaced,
        "abbr": sorted(_text.ABBREVIATIONS) + ["U.S.", "T.", "A.", "i.", "Mrs.", "Hmm.", "ok.", "A.B.C."],
        "special": ["END-OF-SENTENCE", "END-OF-SENTENCE.", "Pluto. Once", "(1998)"],
    }
    kinds = list(vocab)
    weights = [30, 8, 8, 20, 14, 5, 6, 4, 1]
    seps = [" "] * 12 + ["", "", "\n\n", "\r\n", "\t", "  ", "\n", "\u00a0", "\u2028", "\x1c", " \n \n"]
    corpus = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 30)):
            parts.append(rng.choice(vocab[rng.choices(kinds, weights)[0]]))
            parts.append(rng.choice(seps))
        corpus.append("".join(parts))
    return corpus


def test_fuzz_identical(fallbacks: list[str]) -> None:
    corpus = _fuzz_corpus(3000)
    assert _mismatches(corpus) == []
    # The corpus must exercise what it claims to: scored words, negations, both tokenizer paths.
    scores = [textblob_sentiment(s) for s in corpus]
    assert sum(1 for sc in scores if sc[0] != 0.0) > 1000
    negated = sum(1 for sc in scores for w, *_ in sc.assessments if w[0] in ("not", "no", "never"))
    assert negated > 200
    assert sum(1 for sc in scores for w, *_ in sc.assessments if w[-1] == "!") > 50
    handed_over = set(fallbacks)
    assert sum(1 for s in corpus if s in handed_over) > 50
    assert sum(1 for s in corpus if s not in handed_over) > 1000
