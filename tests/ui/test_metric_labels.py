"""Metric labels, units and precision on the Models page: the pure mapping, then the page with real keys."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from services.ui import data
from services.ui.metric_labels import card_layout, duration, metric_card, metric_label, rest_title
from tests.fakes.ui_stub_api import HISTORY, StubApi

UI = Path(__file__).resolve().parents[2] / "services" / "ui"

# What the pipeline published for the two models on this machine (var/model-cache manifests).
RATING = {
    "gap": 0.12388408576743881,
    "test_mae": 0.5625621354090025,
    "test_rmse": 0.7228775278060403,
    "test_within_0_5": 0.5424657534246575,
    "train_mae": 0.44593597820117853,
    "train_rmse": 0.5801967928917879,
    "train_within_0_5": 0.6478140180430256,
    "val_mae": 0.5528249511505637,
    "val_rmse": 0.7040808786592267,
    "val_within_0_5": 0.5391061452513967,
}
RECOMMENDER = {
    "test_coverage@10": 0.16001011122345804,
    "test_hr@10": 0.11791044776119403,
    "test_mrr@10": 0.04548033641317223,
    "test_ndcg@10": 0.062229806801737675,
    "train_seconds": 162.4,
    "valid_coverage@10": 0.16304347826086957,
    "valid_hr@10": 0.12686567164179105,
    "valid_mrr@10": 0.04587775408670931,
    "valid_ndcg@10": 0.06447585431889023,
}


@pytest.mark.parametrize(
    ("key", "value", "label", "text"),
    [
        ("test_rmse", 0.7228775, "RMSE (test)", "0.72 pts"),
        ("val_mae", 0.5528, "MAE (validation)", "0.55 pts"),
        ("test_within_0_5", 0.5424657, "Within ±0.5 pts (test)", "54.2%"),
        ("gap", 0.1238841, "Overfitting gap", "+0.12 pts"),
        ("test_hr@10", 0.1179104, "HR@10 (test)", "11.8%"),
        ("valid_ndcg@10", 0.0644759, "NDCG@10 (validation)", "0.064"),
        ("test_mrr@10", 0.0454803, "MRR@10 (test)", "0.045"),
        ("valid_coverage@10", 0.1630435, "Coverage@10 (validation)", "16.3%"),
        ("train_seconds", 162.4, "Training time", "2 min 42 s"),
        ("train_rmse", 0.58, "RMSE (train)", "0.58 pts"),
        # Older or hand-made keys: bare names, the _at_ spelling, aliases.
        ("rmse", 0.86, "RMSE", "0.86 pts"),
        ("ndcg_at_10", 0.1023, "NDCG@10", "0.102"),
        ("hit_rate@10", 0.21, "HR@10", "21.0%"),
    ],
)
def test_known_metrics_have_a_label_a_unit_and_a_precision(
    key: str, value: float, label: str, text: str
) -> None:
    card = metric_card(key, value)
    assert (card.label, card.value) == (label, text)
    assert card.help and "{k}" not in card.help
    assert metric_label(key) == label


@pytest.mark.parametrize(
    ("key", "value", "label", "text"),
    [
        ("test_precision@5", 0.123456, "Precision@5 (test)", "0.123"),
        ("val_auc", 0.91234, "AUC (validation)", "0.912"),
        ("n_rows", 123456.0, "N rows", "123,456"),
        ("epochs", 12.0, "Epochs", "12"),
        ("tune_seconds", 3725.0, "Tune seconds", "1 h 02 min"),
        ("weird-Key", 1.5, "Weird-key", "1.5"),
    ],
)
def test_unknown_metrics_still_read_as_words_with_a_sane_number(
    key: str, value: float, label: str, text: str
) -> None:
    card = metric_card(key, value)
    assert (card.label, card.value) == (label, text)
    assert key in card.help


def test_missing_values_say_so() -> None:
    assert metric_card("test_rmse", math.nan).value == "n/a"
    assert metric_card("val_within_0_5", float("nan")).value == "n/a"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.25, "250 ms"), (8.149, "8.1 s"), (59.96, "1 min 0 s"), (162.4, "2 min 42 s"), (3599.6, "1 h 00 min"),
     (4000, "1 h 07 min")],
)  # fmt: skip
def test_durations_read_as_people_say_them(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_cards_put_the_test_split_first_and_the_rest_in_rows_per_split() -> None:
    headline, rest = card_layout(RATING)
    assert [c.label for c in headline] == [
        "RMSE (test)",
        "MAE (test)",
        "Within ±0.5 pts (test)",
        "Overfitting gap",
    ]
    assert [[c.split for c in row] for row in rest] == [["validation"] * 3, ["train"] * 3]
    assert rest_title(rest) == "Validation and train metrics"
    headline, rest = card_layout(RECOMMENDER)
    assert [c.label for c in headline] == [
        "HR@10 (test)", "NDCG@10 (test)", "MRR@10 (test)", "Coverage@10 (test)", "Training time"
    ]  # fmt: skip
    assert [c.label for c in rest[0]][0] == "HR@10 (validation)" and len(rest) == 1
    assert rest_title(rest) == "Validation metrics"
    # Without a test split, validation leads; bare keys are all headline.
    headline, rest = card_layout({"val_rmse": 0.7, "train_rmse": 0.6, "gap": 0.1})
    assert [c.label for c in headline] == ["RMSE (validation)", "Overfitting gap"]
    assert [[c.label for c in row] for row in rest] == [["RMSE (train)"]]
    assert card_layout({"rmse": 0.9, "mae": 0.7}) == (card_layout({"rmse": 0.9, "mae": 0.7})[0], [])
    assert card_layout({}) == ([], [])


def test_model_page_shows_real_metric_keys_with_labels_and_units(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(HISTORY["rating"][-1], "metrics", RATING)
    monkeypatch.setitem(HISTORY["recommender"][-1], "metrics", RECOMMENDER)
    st.cache_data.clear()
    at = AppTest.from_file(str(UI / "views" / "model.py"), default_timeout=30)
    at.session_state[data.API_STATE_KEY] = StubApi().client()
    at.run()
    assert not at.exception, at.exception
    cards = {m.label: m.value for m in at.metric}
    st.cache_data.clear()
    # Every metric has a card (the page's other sections have cards of their own).
    for metrics in (RATING, RECOMMENDER):
        headline, rest = card_layout(metrics)
        expected = {c.label: c.value for c in headline + [c for row in rest for c in row]}
        assert len(expected) == len(metrics) and expected.items() <= cards.items()
    assert cards["RMSE (test)"] == "0.72 pts"
    assert cards["Within ±0.5 pts (test)"] == "54.2%"
    assert cards["HR@10 (test)"] == "11.8%"
    assert cards["Training time"] == "2 min 42 s"
    assert cards["NDCG@10 (validation)"] == "0.064"
    assert [e.label for e in at.expander][:2] == ["Validation and train metrics", "Validation metrics"]
    assert not set(RATING) & set(cards) and not set(RECOMMENDER) & set(cards)  # no raw key on the page
