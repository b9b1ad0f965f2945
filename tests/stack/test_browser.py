"""The UI in a real headless Chromium: the real Streamlit server on loopback, talking HTTP to an API.

The API is the real one (scripts/serve.sh under uvicorn) serving the models that the real DAG
(`airflow dags test`, on a real SeaweedFS server) published: the `live_api` session fixture.
Screenshots of every page go to test-artifacts/.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.harness import processes
from services.core import events
from services.core.storage import ObjectStore
from tests import prerequisites

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
KOREAN_OVERVIEW = "한 소년이 잃어버린 강아지를 찾아 먼 바닷가 마을로 떠나고, 그곳에서 평생의 친구를 만난다."
TIMEOUT_MS = 20_000
MAIN_CARDS = '.movie-card[data-row="main"]'  # the ten picks; the New for you row comes after them
S3_WAIT_S = 30  # the API's flusher uploads every couple of seconds (SPOOL_FLUSH_INTERVAL_S)


@pytest.fixture(scope="module")
def ui_api_url(live_api: str) -> str:
    """The real API (uvicorn) serving the models the real pipeline (airflow dags test) published."""
    return live_api


@pytest.fixture(scope="module")
def ui_url(ui_api_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real Streamlit server (same flags as scripts/ui.sh) on a free loopback port."""
    port = processes.free_port()
    log_path = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    env = os.environ | {"API_URL": ui_api_url, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "services/ui/app.py",
        "--server.headless=true",
        "--browser.gatherUsageStats=false",
        "--server.address=127.0.0.1",
        f"--server.port={port}",
        "--server.fileWatcherType=none",
        "--client.toolbarMode=minimal",
    ]
    proc = processes.start(command, env, log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        processes.wait_ok(f"{url}/_stcore/health", proc, log_path)
        yield url
    finally:
        processes.stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium driven by Playwright (no browser download)."""
    chromium_path = prerequisites.program("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, ui_url: str) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=ui_url)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    context.close()


def shoot(page, name: str) -> None:
    """Screenshot the whole page: Streamlit scrolls inside its main area, so grow the window to fit it."""
    ARTIFACTS.mkdir(exist_ok=True)
    height = page.evaluate(
        "() => document.querySelector('[data-testid=\"stMainBlockContainer\"]').scrollHeight"
    )
    page.set_viewport_size({"width": 1400, "height": max(1000, min(int(height) + 160, 5000))})
    page.wait_for_timeout(500)  # let charts re-layout and paint
    page.screenshot(path=str(ARTIFACTS / f"ui-{name}.png"))


def wait_idle(page) -> None:
    """Wait until Streamlit has finished the current run."""
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=TIMEOUT_MS)


def choose(page, label: str, option: str) -> None:
    """Pick an option of the selectbox with this label by typing it."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label)
    box.click()
    page.keyboard.type(option)
    page.get_by_role("option", name=option).first.click()


def test_rating_form_with_a_korean_overview_shows_a_rating(page) -> None:
    from playwright.sync_api import expect

    page.goto("/")
    expect(page.get_by_role("heading", name="Predict a movie's rating")).to_be_visible()
    page.get_by_label("Runtime (minutes)").fill("128")
    choose(page, "Original language", "Korean (ko)")
    choose(page, "Main genre", "Thriller")
    page.get_by_label("Overview").fill(KOREAN_OVERVIEW)
    page.get_by_role("button", name="Estimate rating").click()

    rating = page.locator('[data-testid="stMetric"]').filter(has_text="Predicted rating")
    expect(rating).to_contain_text("/ 10")
    value = rating.locator('[data-testid="stMetricValue"]').inner_text()
    assert 0 <= float(value.split("/")[0]) <= 10
    expect(page.locator('[data-testid="stMetric"]').filter(has_text="Overview text")).to_contain_text(
        "Translated"
    )
    chart = page.locator('[data-testid="stVegaLiteChart"]')
    expect(chart).to_be_visible()
    expect(chart.locator("svg, canvas").first).to_be_visible()
    wait_idle(page)
    shoot(page, "rating")


def test_three_liked_movies_give_ten_cards_with_posters_or_placeholders(page) -> None:
    from playwright.sync_api import expect

    page.goto("/recommend")  # a deep link still runs the app shell: its navigation and API status
    expect(page.get_by_role("heading", name="What to watch next")).to_be_visible()
    expect(page.get_by_test_id("stSidebar").get_by_text("API ready")).to_be_visible()
    expect(page.get_by_test_id("stSidebarNav")).to_contain_text("Predict a rating")
    search = page.get_by_label("Search the catalog")
    for query, label in [
        ("toy", "Toy Story (1995)"),
        ("matri", "The Matrix (1999)"),
        ("heat", "Heat (1995)"),
    ]:
        search.fill(query)  # live search: no Enter needed
        page.get_by_role("button", name=label, exact=True).click()
        expect(page.locator('[data-testid="stMultiSelect"]')).to_contain_text(label)
    page.get_by_role("button", name="Recommend 10 movies").click()

    cards = page.locator(MAIN_CARDS)
    expect(cards).to_have_count(10)
    # Under them, the row of new releases (its cards, or why there are none, depend on the model).
    expect(page.get_by_role("heading", name="New for you")).to_be_visible()
    wait_idle(page)
    # Every poster area paints something: the poster, or (offline here) the placeholder under it.
    layers = page.eval_on_selector_all(
        f"{MAIN_CARDS} .movie-poster", "els => els.map(e => getComputedStyle(e).backgroundImage)"
    )
    assert len(layers) == 10 and all("data:image/svg+xml" in layer for layer in layers)
    assert page.locator(".movie-card img").count() == 0
    shoot(page, "recommend")


def test_model_page_shows_versions_history_and_online_charts(page) -> None:
    from playwright.sync_api import expect

    page.goto("/model")
    expect(page.get_by_role("heading", name="Models in production")).to_be_visible()
    # Exact: "Where the rating model errs" below also holds the words, and may already be drawn.
    expect(page.get_by_role("heading", name="⭐ Rating model", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="🍿 Recommender", exact=True)).to_be_visible()
    expect(page.locator('[data-testid="stMetric"]').first).to_be_visible()
    # The pipeline run judged the version the app served (tests/pipeline_run.py: pipeline_run): its online
    # section plots hit rate, MRR, coverage and fallback share beside the two history charts.
    expect(page.get_by_role("heading", name="Recommender online")).to_be_visible()
    # Monitoring: the pipeline's later days scored the new movies with production (live RMSE by day) and
    # ran Evidently on the shifted requests the app was sent; the report opens from its link.
    expect(page.get_by_role("heading", name="Monitoring")).to_be_visible()
    # Where the rating model errs: bias and RMSE by band, from the pipeline's error analysis.
    expect(page.get_by_role("heading", name=re.compile("Where the rating model errs"))).to_be_visible()
    expect(page.locator('[data-testid="stVegaLiteChart"]')).to_have_count(9)
    expect(page.get_by_text("Alert on", exact=False).first).to_be_visible()
    link = page.get_by_role("link", name=re.compile(r"\d{4}-\d{2}-\d{2} requests")).first
    expect(link).to_be_visible()
    wait_idle(page)
    shoot(page, "model")
    report = page.context.request.get(link.get_attribute("href"))
    assert report.status == 200 and report.headers["content-type"].startswith("text/html")
    assert (
        "drift" in report.text().lower() and len(report.body()) > 100_000
    )  # Evidently's page, charts inline


def stored_events(store: ObjectStore, stream: str, **match: Any) -> list[dict[str, Any]]:
    """The events of one stream on S3 whose fields equal match, waiting for the API's flusher."""
    deadline = time.monotonic() + S3_WAIT_S
    while True:
        found = [
            e
            for day in events.days(store, stream)
            for e in events.read_day(store, stream, day)
            if all(e.get(k) == v for k, v in match.items())
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_thumbs_up_on_a_card_reaches_s3_tied_to_what_was_shown(page, ui_api_url: str, pipeline_run) -> None:
    from playwright.sync_api import expect

    page.goto("/recommend")
    page.get_by_label("Search the catalog").fill("toy")
    page.get_by_role("button", name="Toy Story (1995)", exact=True).click()
    expect(page.locator('[data-testid="stMultiSelect"]')).to_contain_text("Toy Story (1995)")
    page.get_by_role("button", name="Recommend 10 movies").click()
    cards = page.locator(MAIN_CARDS)
    expect(cards).to_have_count(10)
    wait_idle(page)
    user = page.locator("code").filter(has_text=re.compile(r"^anon-[0-9a-f]{32}$")).inner_text()
    second = int(cards.nth(1).get_attribute("data-tmdb-id"))

    page.get_by_role("button", name="👍", exact=True).nth(1).click()
    expect(page.get_by_test_id("stToast")).to_contain_text("👍 saved")
    expect(page.locator(f'.likes-strip [data-tmdb-id="{second}"]')).to_be_visible()
    wait_idle(page)
    shoot(page, "recommend-feedback")

    store = ObjectStore.from_settings(pipeline_run.settings)
    [like] = stored_events(store, "feedback", user_id=user, tmdb_id=second, kind="like")
    assert like["position"] == 2 and like["request_id"]
    # The like names the response that showed the movie, at the place it was shown: the join key of
    # the online evaluation.
    [shown] = stored_events(store, "impressions", request_id=like["request_id"])
    assert shown["items"][1] == second and shown["user_id"] == user
