"""The rating model service: validated movies in, ratings with sentiment, notes and attributions out.

With a rating model in shadow (a running experiment), the logged predictions are also scored by the
shadow and logged beside production's (shadow_version, shadow_prediction); its answers are never returned.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from services.core.events import utc_now
from services.core.features import featurize_one, is_one_hot
from services.core.movie import normalize_movie
from services.serve.metrics import ServeMetrics
from services.serve.request_ids import server_event_id
from services.serve.schemas_predict import MovieIn, PredictionOut, Sentiment
from services.serve.state import RatingBundle
from services.serve.translate import OverviewTranslator, TranslationResult

log = logging.getLogger(__name__)

POSITIVE, NEGATIVE = 0.1, -0.1  # polarity thresholds of the sentiment label


def sentiment_label(polarity: float) -> str:
    """'positive', 'negative' or 'neutral' for a TextBlob polarity."""
    return "positive" if polarity >= POSITIVE else "negative" if polarity <= NEGATIVE else "neutral"


class RatingService:
    """Predicts ratings with the model bundle and translator it is handed (no I/O of its own)."""

    def __init__(
        self,
        bundle: RatingBundle,
        translator: OverviewTranslator,
        metrics: ServeMetrics | None = None,
        *,
        shadow: RatingBundle | None = None,
        log_rate: float = 0.0,
        log_text: bool = False,
        sample: Callable[[], float] = random.random,
    ) -> None:
        self.bundle = bundle
        self.translator = translator
        self.metrics = metrics
        self.log_rate = log_rate
        self.log_text = log_text
        self.sample = sample
        self.shadow = shadow
        # The shadow reads production's feature vectors when it encodes movies the same way (compared once
        # here, not per request); otherwise it featurizes the logged movies with its own encoders.
        self._shadow_same_features = shadow is not None and (
            shadow.feature_names == bundle.feature_names and shadow.encoders == bundle.encoders
        )
        self._shadow_failed = False
        # Sentiment is a model feature already: read it from the vector instead of running TextBlob twice.
        self._polarity = bundle.feature_names.index("overview_polarity")
        self._subjectivity = bundle.feature_names.index("overview_subjectivity")
        # The log keeps a one-hot column only where it is 1 (absent means 0, as the readers know): most
        # of a vector is zero indicators with long names, ~80% of a logged row's bytes otherwise.
        names = bundle.feature_names
        self._dense = [(i, n) for i, n in enumerate(names) if not is_one_hot(n)]
        self._one_hot = np.array([i for i, n in enumerate(names) if is_one_hot(n)], dtype=np.intp)

    def must_wait(self, movies: Sequence[MovieIn]) -> bool:
        """Whether predicting these movies waits on the translator (so must not run on the event loop)."""
        return self.translator.must_wait([(m.overview, m.original_language) for m in movies])

    def predict_logged(
        self, movies: Sequence[MovieIn], explain: bool = False
    ) -> tuple[list[PredictionOut], list[dict[str, Any]]]:
        """One prediction per movie, in order (one model call for the list), and the log events of the sampled ones."""
        translations = self.translator.translate_many([(m.overview, m.original_language) for m in movies])
        records, fields = [], []
        for movie, translation in zip(movies, translations, strict=True):
            raw = movie.model_dump()
            fields.append({k: v for k, v in raw.items() if k != "overview"})  # the log's copy, dumped once
            raw["overview"] = translation.text
            records.append(normalize_movie(raw))
        x = np.vstack([featurize_one(r, self.bundle.encoders) for r in records])
        ratings = self.bundle.model.predict(x)
        contributions = self.bundle.model.contributions(x) if explain else None
        version = self.bundle.manifest.version
        out = []
        for i, (record, translation) in enumerate(zip(records, translations, strict=True)):
            polarity, subjectivity = float(x[i, self._polarity]), float(x[i, self._subjectivity])
            out.append(
                PredictionOut(
                    predicted_rating=round(float(ratings[i]), 4),
                    model_version=version,
                    overview_sentiment=Sentiment(
                        polarity=round(polarity, 4),
                        subjectivity=round(subjectivity, 4),
                        label=sentiment_label(polarity),
                    ),
                    translated=translation.translated,
                    notes=self._notes(record, translation),
                    contributions=self._explain(contributions[i]) if contributions is not None else None,
                )
            )
        self._observe(ratings, translations)
        return out, self._log_events(movies, fields, records, x, out)

    def _log_events(
        self,
        movies: Sequence[MovieIn],
        fields: list[dict[str, Any]],
        records: list[dict[str, Any]],
        x: np.ndarray,
        out: list[PredictionOut],
    ) -> list[dict[str, Any]]:
        # What drift monitoring compares with the training features: the raw fields, the vector the model
        # saw and its answer. The overview is kept as its features and length only, unless asked for.
        # On the request path: one tolist() for the whole batch, NaN checked only in rows that have one.
        # The shadow scores only the logged rows: an answer nobody records is work for nothing.
        if self.log_rate <= 0.0:
            return []
        count = len(movies)
        keep = (
            range(count)
            if self.log_rate >= 1.0
            else [i for i in range(count) if self.sample() < self.log_rate]
        )
        if not keep:
            return []
        kept_x = x if len(keep) == count else x[list(keep)]
        shadow_scores = self._shadow_predictions(records, kept_x, keep) if self.shadow is not None else None
        events, ts, names = [], utc_now(), self.bundle.feature_names
        hot_rows, hot_cols = np.nonzero(kept_x[:, self._one_hot])
        hot: list[list[int]] = [[] for _ in keep]
        for r, c in zip(hot_rows.tolist(), self._one_hot[hot_cols].tolist(), strict=True):
            hot[r].append(c)
        for j, (i, row) in enumerate(zip(keep, kept_x.tolist(), strict=True)):
            movie, given, prediction = movies[i], fields[i], out[i]
            given["overview_length"] = len(movie.overview)
            if self.log_text:
                given["overview"] = movie.overview
            # NaN (a missing value) is logged as null: v != v only for NaN, and cheaper than math.isnan.
            features = {n: (None if row[c] != row[c] else row[c]) for c, n in self._dense}
            for c in hot[j]:
                features[names[c]] = row[c]
            event = {
                "event_id": server_event_id(),
                "ts": ts,
                "model_version": prediction.model_version,
                "prediction": prediction.predicted_rating,
                "translated": prediction.translated,
                "input": given,
                "features": features,
            }
            if self.shadow is not None:
                event["shadow_version"] = self.shadow.manifest.version
                event["shadow_prediction"] = shadow_scores[j] if shadow_scores is not None else None
            events.append(event)
        return events

    def _shadow_predictions(
        self, records: list[dict[str, Any]], x: np.ndarray, keep: Sequence[int]
    ) -> list[float] | None:
        """The shadow's ratings of the kept rows; None when it fails (the answer never depends on it)."""
        shadow = self.shadow
        assert shadow is not None
        try:
            if not self._shadow_same_features:
                x = np.vstack([featurize_one(records[i], shadow.encoders) for i in keep])
            return [round(float(v), 4) for v in shadow.model.predict(x)]
        except Exception:  # noqa: BLE001 - a broken shadow costs its log entries, never a request
            if not self._shadow_failed:  # once per loaded shadow: a broken one would flood the log
                log.exception("rating shadow %s failed to predict; logging null", shadow.manifest.version)
                self._shadow_failed = True
            return None

    def _notes(self, record: dict[str, Any], translation: TranslationResult) -> list[str]:
        enc, version = self.bundle.encoders, self.bundle.manifest.version
        notes = [translation.note] if translation.note else []
        if not record["genres"]:
            notes.append("no genres given: the main genre is encoded as unknown")
        for genre in record["genres"]:
            if enc.code("genres", genre) == 0:
                notes.append(
                    f"genre {genre!r} is unknown to model {version}: it is mapped to the unknown bucket"
                )
        language = record["original_language"]
        if enc.code("languages", language) == 0:
            notes.append(
                f"original_language {language!r} is too rare in the training data: encoded as unknown"
            )
        return notes

    def _explain(self, row: np.ndarray) -> dict[str, float]:
        # Native attributions (XGBoost pred_contribs / LightGBM pred_contrib): the last column is the bias.
        out = {name: round(float(v), 6) for name, v in zip(self.bundle.feature_names, row[:-1], strict=True)}
        out["bias"] = round(float(row[-1]), 6)
        return out

    def _observe(self, ratings: np.ndarray, translations: list[TranslationResult]) -> None:
        if self.metrics is None:
            return
        for rating in ratings:
            self.metrics.predicted_rating.observe(float(rating))
        for t in translations:
            if t.translated or t.note:
                self.metrics.translations.labels("translated" if t.translated else "failed").inc()
