"""A stand-in for the serving API, as the UI sees it: the same routes and bodies, made-up answers.

One ``StubApi`` answers both ways the UI tests need: in process through ``httpx.MockTransport``
(``stub.client()`` gives a real ``MovieApi`` on it, for AppTest) and over real HTTP on 127.0.0.1
(``stub.serve()``, for the browser test). Switches: ``ready`` (False answers 503 like an API
without a model), ``with_history`` (serve ``GET /model/history``, which the real API lacks so far),
``with_recommender`` (False: popularity only). Every request is recorded.

Run it by hand for UI work: ``python -m tests.fakes.ui_stub_api --port 8000``.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from services.ui.api_client import MovieApi

log = logging.getLogger(__name__)

POSTER_BASE = "https://image.tmdb.org/t/p/w342"
RATING_VERSION = "20250301T120000Z-a1b2c3"
RECOMMENDER_VERSION = "20250301T121500Z-d4e5f6"
HANGUL = re.compile(r"[\uac00-\ud7a3]")

# tmdb_id | title | year | genres | popularity | overview
_TABLE = """
862|Toy Story|1995|Animation,Comedy,Family|21.9|A cowboy doll feels threatened when a new spaceman figure arrives.
863|Toy Story 2|1999|Animation,Comedy,Family|17.5|Woody is stolen by a toy collector and his friends set out to rescue him.
12|Finding Nemo|2003|Animation,Family|25.5|A timid clownfish crosses the ocean to find his son.
585|Monsters, Inc.|2001|Animation,Comedy,Family|26.4|Monsters who scare children for energy meet a fearless little girl.
8587|The Lion King|1994|Animation,Drama,Family|21.6|A young lion prince flees his kingdom after his father's death.
8844|Jumanji|1995|Adventure,Fantasy,Family|17.0|Siblings find a board game that releases jungle dangers into their town.
949|Heat|1995|Action,Crime,Drama|17.9|A detective hunts a meticulous crew of professional thieves in Los Angeles.
710|GoldenEye|1995|Adventure,Action,Thriller|14.7|James Bond stops a stolen satellite weapon from striking London.
807|Se7en|1995|Crime,Mystery,Thriller|18.5|Two detectives track a killer who stages murders after the seven deadly sins.
629|The Usual Suspects|1995|Drama,Crime,Thriller|16.3|A con man tells police how five criminals met in a line-up.
197|Braveheart|1995|Action,Drama,History,War|20.8|William Wallace leads a Scottish revolt against English rule.
568|Apollo 13|1995|Drama,History|11.4|Three astronauts fight to get home after an explosion on their way to the Moon.
680|Pulp Fiction|1994|Thriller,Crime|40.6|Hitmen, a boxer and a gangster's wife cross paths in Los Angeles.
13|Forrest Gump|1994|Comedy,Drama,Romance|48.3|A kind-hearted man drifts through decades of American history.
329|Jurassic Park|1993|Adventure,Science Fiction|25.0|Cloned dinosaurs break loose in an island theme park.
424|Schindler's List|1993|Drama,History,War|41.7|A businessman saves more than a thousand Jewish workers during the Holocaust.
278|The Shawshank Redemption|1994|Drama,Crime|51.6|A banker serving a life sentence finds hope and friendship in prison.
11|Star Wars|1977|Adventure,Action,Science Fiction|42.1|A farm boy joins rebels to rescue a princess from the Empire.
275|Fargo|1996|Crime,Drama,Thriller|15.6|A pregnant police chief investigates a kidnapping gone wrong in Minnesota.
603|The Matrix|1999|Action,Science Fiction|33.4|A hacker learns that the world is a simulation run by machines.
550|Fight Club|1999|Drama|63.9|An insomniac office worker and a soap maker start an underground fight club.
129|Spirited Away|2001|Animation,Family,Fantasy|41.0|A girl must free her parents in a world of spirits and a bathhouse witch.
670|Oldboy|2003|Drama,Thriller,Mystery|13.6|A man imprisoned for fifteen years is released and given five days to find out why.
1255|The Host|2006|Horror,Drama,Science Fiction|11.8|A creature rises from Seoul's Han River and takes a girl; her family hunts it.
4584|Sense and Sensibility|1995|Drama,Romance|10.7|Two sisters of opposite temperaments look for love after losing their fortune.
"""
_MOVIES = [
    (int(i), title, int(year), genres.split(","), float(pop), overview)
    for i, title, year, genres, pop, overview in (row.split("|") for row in _TABLE.strip().splitlines())
]
CATALOG: dict[int, dict[str, Any]] = {
    tmdb_id: {
        "tmdb_id": tmdb_id,
        "title": title,
        "release_year": year,
        "overview": overview,
        "poster_url": f"{POSTER_BASE}/stub{tmdb_id}.jpg",
        "genres": genres,
        "original_language": "ko" if tmdb_id in (670, 1255) else "en",
        "popularity": popularity,
    }
    for tmdb_id, title, year, genres, popularity, overview in _MOVIES
}
GENRES = sorted({g for *_, genres, _, _ in _MOVIES for g in genres} | {"Documentary", "Horror", "Western"})


def _history(
    model: str, version: str, metric_path: list[tuple[str, dict[str, float]]]
) -> list[dict[str, Any]]:
    rows = []
    for i, (ver, metrics) in enumerate(metric_path):
        rows.append(
            {
                "version": ver,
                "created_at": f"2025-02-{10 + 4 * i:02d}T12:00:00Z",
                "metrics": metrics,
                "production": ver == version,
            }
        )
    return rows


HISTORY = {
    "rating": _history(
        "rating",
        RATING_VERSION,
        [
            ("20250210T120000Z-0a0a0a", {"rmse": 0.94, "mae": 0.72}),
            ("20250214T120000Z-1b1b1b", {"rmse": 0.91, "mae": 0.70}),
            ("20250218T120000Z-2c2c2c", {"rmse": 0.93, "mae": 0.71}),
            ("20250222T120000Z-3d3d3d", {"rmse": 0.88, "mae": 0.68}),
            (RATING_VERSION, {"rmse": 0.86, "mae": 0.66}),
        ],
    ),
    "recommender": _history(
        "recommender",
        RECOMMENDER_VERSION,
        [
            ("20250210T121500Z-4e4e4e", {"ndcg_at_10": 0.081, "hit_rate_at_10": 0.17}),
            ("20250218T121500Z-5f5f5f", {"ndcg_at_10": 0.094, "hit_rate_at_10": 0.19}),
            (RECOMMENDER_VERSION, {"ndcg_at_10": 0.102, "hit_rate_at_10": 0.21}),
        ],
    ),
}


@dataclass
class StubApi:
    """The serving API's contract with canned data; see the module docstring."""

    ready: bool = True
    with_history: bool = True
    with_recommender: bool = True  # False: popularity for everyone, like an API without that model
    requests: list[tuple[str, str, Any]] = field(default_factory=list)

    # --- routing ---------------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        """One request in, (status, JSON body) out."""
        self.requests.append((method, path, body))
        if (method, path) == ("GET", "/health"):
            return 200, {"status": "ok"}
        if (method, path) == ("GET", "/ready"):
            if not self.ready:
                return 503, {"ready": False, "detail": "no production model in the registry yet"}
            return 200, {"ready": True, "detail": None, "rating_version": RATING_VERSION, "source": "s3"}
        if (method, path) == ("GET", "/movies/search"):
            return 200, self._search(query.get("q", ""), int(query.get("limit", 10)))
        if method == "GET" and (m := re.fullmatch(r"/movies/(\d+)", path)):
            movie = CATALOG.get(int(m.group(1)))
            return (200, movie) if movie else (404, {"detail": "no such movie in the catalog"})
        if (method, path) == ("GET", "/model"):
            return 200, self._model()
        if (method, path) == ("GET", "/model/history") and self.with_history:
            return 200, HISTORY if self.ready else {"rating": [], "recommender": []}
        if (method, path) == ("POST", "/predict"):
            return self._predict(body)
        if (method, path) == ("POST", "/recommend"):
            return self._recommend(body)
        return 404, {"detail": "Not Found"}

    def calls(self, method: str, path: str) -> list[Any]:
        """Bodies of the recorded requests to one route."""
        return [body for m, p, body in self.requests if (m, p) == (method, path)]

    # --- routes ----------------------------------------------------------------------------------
    @staticmethod
    def _search(q: str, limit: int) -> dict[str, Any]:
        needle = q.strip().casefold()
        hits = [m for m in CATALOG.values() if needle and needle in m["title"].casefold()]
        hits.sort(key=lambda m: (not m["title"].casefold().startswith(needle), -m["popularity"]))
        return {"query": q, "items": hits[:limit]}

    def _model(self) -> dict[str, Any]:
        if not self.ready:
            return {
                "ready": False,
                "source": None,
                "loaded_at": None,
                "load_seconds": None,
                "detail": "no production model in the registry yet",
                "rating": None,
                "recommender": None,
                "catalog_size": 0,
            }

        def info(model: str, version: str, algorithm: str) -> dict[str, Any]:
            return {
                "version": version,
                "algorithm": algorithm,
                "created_at": HISTORY[model][-1]["created_at"],
                "metrics": HISTORY[model][-1]["metrics"],
                "wandb_run": f"offline-run-20250226_120000-{model[:4]}",
                "git_commit": "0123abcd",
                "n_features": 42,
                "source": "s3",
            }

        return {
            "ready": True,
            "source": "s3",
            "loaded_at": "2025-03-01T12:20:00Z",
            "load_seconds": 0.4,
            "detail": None,
            "rating": info("rating", RATING_VERSION, "xgboost"),
            "recommender": info("recommender", RECOMMENDER_VERSION, "gru4rec"),
            "catalog_size": len(CATALOG),
        }

    def _predict(self, body: Any) -> tuple[int, Any]:
        if not self.ready:
            return 503, {"detail": "no rating model loaded yet"}
        problems = _validate_movie(body)
        if problems:
            return 422, {"detail": problems}
        overview = body["overview"]
        translated = bool(HANGUL.search(overview))
        genres = body["genres"]
        contributions = {
            "runtime": round((float(body["runtime"]) - 100) / 120, 3),
            "overview_polarity": 0.21 if translated else 0.05,
            "overview_subjectivity": -0.04,
            "overview_length": round(min(len(overview), 400) / 2000, 3),
            "overview_words": 0.02,
            "main_genre": 0.12 if genres and genres[0] in ("Drama", "Animation") else -0.09,
            "n_genres": 0.03 * len(genres),
            "original_language": 0.18 if body["original_language"] == "ko" else 0.0,
            "is_english": -0.05 if body["original_language"] == "en" else 0.0,
            "release_year": -0.11 if body.get("release_date") else 0.0,
            "log_budget": 0.07 if body.get("budget") else -0.02,
            "in_collection": 0.0,
            "genre=Drama": 0.26 if "Drama" in genres else -0.06,
            "genre=Horror": -0.31 if "Horror" in genres else 0.01,
            "genre=Animation": 0.15 if "Animation" in genres else 0.0,
            "genre=Comedy": -0.12 if "Comedy" in genres else 0.02,
            "country=US": -0.03,
            "bias": 6.12,
        }
        rating = max(0.0, min(10.0, sum(contributions.values())))
        notes = ["The overview was translated from Korean to English before scoring."] if translated else []
        return 200, {
            "predicted_rating": round(rating, 3),
            "model_version": RATING_VERSION,
            "overview_sentiment": {
                "polarity": 0.35 if translated else 0.1,
                "subjectivity": 0.5,
                "label": "positive" if translated else "neutral",
            },
            "translated": translated,
            "notes": notes,
            "contributions": contributions,
        }

    def _recommend(self, body: Any) -> tuple[int, Any]:
        if not self.ready:
            return 503, {"detail": "no recommender loaded yet"}
        liked = [int(i) for i in (body or {}).get("liked", [])]
        k = int((body or {}).get("k", 10))
        known = [i for i in liked if i in CATALOG]
        unknown = [i for i in liked if i not in CATALOG]
        liked_genres = {g for i in known for g in CATALOG[i]["genres"]}

        def score(movie: dict[str, Any]) -> float:
            overlap = len(liked_genres & set(movie["genres"]))
            return round(overlap + movie["popularity"] / 100, 4)

        pool = [m for m in CATALOG.values() if m["tmdb_id"] not in liked]
        personal = bool(known) and self.with_recommender
        pool.sort(key=lambda m: (-score(m), m["tmdb_id"]) if personal else (-m["popularity"], m["tmdb_id"]))
        items = [
            {key: m[key] for key in ("tmdb_id", "title", "release_year", "overview", "poster_url")}
            | {"score": score(m)}
            for m in pool[:k]
        ]
        return 200, {
            "items": items,
            "unknown": unknown,
            "strategy": "sequential" if personal else "popularity",
            "cold_start": not known,
            "model_version": RECOMMENDER_VERSION if self.with_recommender else None,
        }

    # --- transports ------------------------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        """In-process transport for httpx."""

        def respond(request: httpx.Request) -> httpx.Response:
            body = json.loads(request.content) if request.content else None
            status, payload = self.handle(request.method, request.url.path, dict(request.url.params), body)
            return httpx.Response(status, json=payload)

        return httpx.MockTransport(respond)

    def client(self) -> MovieApi:
        """A real MovieApi talking to this stub in process (its base_url is unique per client)."""
        return MovieApi(f"http://stub-{uuid.uuid4().hex[:8]}.invalid", transport=self.transport())

    @contextmanager
    def serve(self, port: int = 0) -> Iterator[str]:
        """Serve over real HTTP on 127.0.0.1; yields the base URL."""
        server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="ui-stub-api", daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def _validate_movie(body: Any) -> list[dict[str, Any]]:
    """FastAPI-style 422 details for the required fields."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}]
    problems = []
    for name in ("overview", "runtime", "genres", "original_language"):
        if name not in body:
            problems.append({"loc": ["body", name], "msg": "Field required", "type": "missing"})
    if isinstance(body.get("overview"), str) and not body["overview"].strip():
        problems.append(
            {
                "loc": ["body", "overview"],
                "msg": "Value error, overview must not be blank",
                "type": "value_error",
            }
        )
    runtime = body.get("runtime")
    if runtime is not None and (not isinstance(runtime, int | float) or runtime <= 0):
        problems.append(
            {"loc": ["body", "runtime"], "msg": "Input should be greater than 0", "type": "greater_than"}
        )
    lang = body.get("original_language")
    if lang is not None and not (isinstance(lang, str) and re.fullmatch(r"[a-z]{2}", lang)):
        problems.append(
            {
                "loc": ["body", "original_language"],
                "msg": "String should match pattern '^[a-z]{2}$'",
                "type": "string_pattern_mismatch",
            }
        )
    return problems


def _handler_for(stub: StubApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                status, payload = (
                    422,
                    {"detail": [{"loc": ["body"], "msg": "JSON decode error", "type": "json"}]},
                )
            else:
                status, payload = stub.handle(method, url.path, dict(parse_qsl(url.query)), body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._answer("GET")

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self._answer("POST")

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("stub api: " + fmt, *args)

    return Handler


def main() -> None:
    """Serve the stub until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--not-ready", action="store_true", help="answer 503 like an API without a model")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    with StubApi(ready=not args.not_ready).serve(args.port) as url:
        log.info("stub API on %s (Ctrl-C to stop)", url)
        threading.Event().wait()


if __name__ == "__main__":
    main()
