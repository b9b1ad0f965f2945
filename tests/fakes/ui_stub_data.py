"""The stand-in API's canned answers: a small catalog and its new releases, a registry history, online metrics."""

from __future__ import annotations

from typing import Any

POSTER_BASE = "https://image.tmdb.org/t/p/w342"
RATING_VERSION = "20250301T120000Z-a1b2c3"
RECOMMENDER_VERSION = "20250301T121500Z-d4e5f6"
PREVIOUS_RECOMMENDER = "20250218T121500Z-5f5f5f"
PREVIOUS_RATING = "20250218T120000Z-0e0e0e"

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

# New releases: in the catalog but with no interactions in the recommender's training data, so only
# POST /recommend with pool "new" ranks them (by genre overlap with the likes, as content would).
_NEW_TABLE = """
1100001|Robot Summer|2026|Animation,Comedy,Family|3.5|Two kids hide a runaway delivery robot for the school holidays.
1100002|The Last Orbit|2026|Science Fiction,Drama|4.1|A lone engineer keeps a failing space station alive for one more week.
1100003|Night Shift at Kowloon|2026|Crime,Thriller|2.7|A taxi driver becomes the only witness to a jewel robbery.
1100004|Salt and Stars|2026|Drama,Romance|1.9|A fisherman and a visiting astronomer spend one summer on a small island.
1100005|The Quiet Harvest|2026|Drama,History|2.2|A village hides its grain from soldiers through a long winter.
1100006|Paper Lanterns|2026|Animation,Family,Fantasy|3.0|A girl follows a lantern into a city where lost wishes live.
"""
NEW_RELEASES: dict[int, dict[str, Any]] = {
    int(i): {
        "tmdb_id": int(i),
        "title": title,
        "release_year": int(year),
        "overview": overview,
        "poster_url": f"{POSTER_BASE}/stub{i}.jpg",
        "genres": genres.split(","),
        "original_language": "en",
        "popularity": float(pop),
    }
    for i, title, year, genres, pop, overview in (row.split("|") for row in _NEW_TABLE.strip().splitlines())
}


def _history(
    model: str, version: str, metric_path: list[tuple[str, dict[str, float]]], algorithm: str
) -> list[dict[str, Any]]:
    rows = []
    for i, (ver, metrics) in enumerate(metric_path):
        rows.append(
            {
                "version": ver,
                "created_at": f"2025-02-{10 + 4 * i:02d}T12:00:00Z",
                "algorithm": algorithm,
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
        "xgboost",
    ),
    "recommender": _history(
        "recommender",
        RECOMMENDER_VERSION,
        [
            ("20250210T121500Z-4e4e4e", {"ndcg_at_10": 0.081, "hit_rate_at_10": 0.17}),
            (PREVIOUS_RECOMMENDER, {"ndcg_at_10": 0.094, "hit_rate_at_10": 0.19}),
            (RECOMMENDER_VERSION, {"ndcg_at_10": 0.102, "hit_rate_at_10": 0.21}),
        ],
        "sasrec",
    ),
}


def _online(
    version: str, responses: int, hit_rate: float, mrr: float, coverage: float, fallback: float
) -> dict[str, Any]:
    return {
        "version": version,
        "responses": responses,
        "hit_rate": hit_rate,
        "mrr": mrr,
        "coverage": coverage,
        "distinct_items": round(coverage * 3956),
        "catalog_size": 3956,
        "fallback_share": fallback,
        "positives": round(responses * hit_rate),
    }


# Five days of online evaluation: the new version rolls out on 03-03 and both answer for two days.
ONLINE_DAYS: list[dict[str, Any]] = [
    {
        "date": date,
        "window_minutes": 30,
        "impressions": sum(v["responses"] for v in versions),
        "feedback_events": sum(v["positives"] for v in versions) * 2,
        "versions": versions,
    }
    for date, versions in [
        ("2025-03-01", [_online(PREVIOUS_RECOMMENDER, 410, 0.18, 0.071, 0.21, 0.31)]),
        ("2025-03-02", [_online(PREVIOUS_RECOMMENDER, 388, 0.17, 0.066, 0.20, 0.29)]),
        (
            "2025-03-03",
            [
                _online(PREVIOUS_RECOMMENDER, 201, 0.19, 0.074, 0.16, 0.30),
                _online(RECOMMENDER_VERSION, 215, 0.24, 0.098, 0.27, 0.22),
            ],
        ),
        (
            "2025-03-04",
            [
                _online(PREVIOUS_RECOMMENDER, 97, 0.16, 0.062, 0.09, 0.33),
                _online(RECOMMENDER_VERSION, 342, 0.26, 0.104, 0.31, 0.20),
            ],
        ),
        ("2025-03-05", [_online(RECOMMENDER_VERSION, 455, 0.27, 0.109, 0.33, 0.19)]),
    ]
]


def _live(
    date: str, version: str, count: int, rmse: float, recipe: float, validation: float
) -> dict[str, Any]:
    model = {"count": count, "rmse": rmse, "mae": round(rmse * 0.78, 4), "sse": count * rmse**2, "sae": 0.0}
    return {
        "date": date,
        "status": "ok",
        "model_version": version,
        "validation_rmse": validation,
        "model": model,
        "reference_recipe": {**model, "rmse": recipe},
        "window": {"days_back": 7, "count": count, "rmse": rmse, "mae": model["mae"], "days": 1},
    }


def _drift(date: str, share: float, drifted: list[str]) -> dict[str, Any]:
    requests = {"status": "ok", "share": share, "drifted": drifted, "features": {}, "rows_current": 5000, "rows_day": 120_000,
                "report": f"reports/drift/dt={date}/requests.html"}  # fmt: skip
    return {"date": date, "status": "ok", "comparisons": {
        "requests": requests, "collected": {"status": "no new movies were collected that day", "rows_current": 0}}}  # fmt: skip


# Three monitored days: the version of 03-04 does worse on 03-05's releases, whose requests drifted.
MONITORING: dict[str, Any] = {
    "live": [
        {"date": "2025-03-02", "status": "no production rating model yet: nothing to judge"},
        _live("2025-03-03", PREVIOUS_RATING, 81, 0.79, 0.89, 0.71),
        _live("2025-03-04", RATING_VERSION, 77, 0.83, 0.90, 0.70),
        _live("2025-03-05", RATING_VERSION, 74, 1.31, 0.95, 0.70),
    ],
    "drift": [_drift("2025-03-04", 0.0, []), _drift("2025-03-05", 0.5, ["runtime", "main_genre"])],
    "alerts": [
        {"date": "2025-03-04", "alert": False, "reasons": []},
        {
            "date": "2025-03-05",
            "alert": True,
            "reasons": [{"reason": "drift_requests", "message": "2 of 4 features drifted in requests"}],
        },  # fmt: skip
    ],
}


def _band(band: str, count: int, prod: tuple[float, float], chall: tuple[float, float]) -> dict[str, Any]:
    def stats(bias: float, rmse: float) -> dict[str, Any]:
        return {"count": count, "bias": bias, "rmse": rmse, "mae": round(rmse * 0.8, 4)}

    return {"band": band, "count": count, "production": stats(*prod), "challenger": stats(*chall)}


# The run of 2025-03-05 on its test split: few-vote movies are over-predicted by both models. Keys sorted,
# as the API serves the stored report.
ERRORS: dict[str, Any] = {
    "date": "2025-03-05", "status": "ok", "split": "test", "rows": 120, "window": ["2025-01-02", "2025-03-01"],
    "models": {"production": {"algorithm": "xgboost", "version": RATING_VERSION},
               "challenger": {"algorithm": "lightgbm", "version": None}},
    "dimensions": {
        "main_genre": {"title": "Main genre (first listed)", "bands": [
            _band("Drama", 70, (-0.05, 0.74), (-0.02, 0.72)), _band("other", 50, (0.30, 0.95), (0.22, 0.90))]},
        "vote_count": {"title": "Vote count (how many ratings the label rests on)", "bands": [
            _band("10–50", 50, (0.49, 1.02), (0.41, 0.97)), _band("50–200", 40, (0.12, 0.71), (0.10, 0.69)),
            _band("200–1k", 30, (-0.21, 0.55), (-0.18, 0.52))]},
    },
}  # fmt: skip
