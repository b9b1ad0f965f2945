"""What the sequential model may use besides the sequences: item features and transition counts.

Both are computed from the catalog and the training sequences only, never from validation or
test targets, and are stored inside the model's state_dict so serving needs nothing else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from services.core.catalog import Catalog

# Release eras: users often rate movies of one era in a row (browsing by decade).
ERA_EDGES = (1950, 1960, 1970, 1980, 1990, 1995, 2000, 2005, 2010)
TOP_LANGUAGES = 8


def item_feature_matrix(item_ids: np.ndarray, catalog: Catalog) -> tuple[np.ndarray, list[str]]:
    """Multi-hot features (n_items + 1, n_features) per internal index (row 0 is padding) and their names.

    Genres, release era (one-hot over ERA_EDGES plus unknown) and original language (the most
    frequent ones, plus other). An item missing from the catalog gets unknown era, other language.
    """
    entries = [catalog.get(int(i)) or {} for i in item_ids]
    genres = sorted({g for m in entries for g in m.get("genres") or []})
    languages = [lang for lang, _ in Counter(m.get("original_language") or "" for m in entries).most_common()
                 if lang][:TOP_LANGUAGES]  # fmt: skip
    names = (
        [f"genre:{g}" for g in genres]
        + [f"era:<{ERA_EDGES[0]}"]
        + [f"era:{e}+" for e in ERA_EDGES]
        + ["era:unknown"]
        + [f"lang:{lang}" for lang in languages]
        + ["lang:other"]
    )
    column = {name: j for j, name in enumerate(names)}
    out = np.zeros((len(item_ids) + 1, len(names)), dtype=np.float32)
    for row, movie in enumerate(entries, start=1):
        for g in movie.get("genres") or []:
            out[row, column[f"genre:{g}"]] = 1.0
        year = movie.get("release_year")
        if year is None:
            out[row, column["era:unknown"]] = 1.0
        else:
            k = int(np.searchsorted(ERA_EDGES, year, side="right"))
            out[row, column[f"era:<{ERA_EDGES[0]}" if k == 0 else f"era:{ERA_EDGES[k - 1]}+"]] = 1.0
        lang = movie.get("original_language") or ""
        out[row, column[f"lang:{lang}" if lang in languages else "lang:other"]] = 1.0
    return out, names


def transition_csr(
    sequences: Sequence[np.ndarray], n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of each (movie, next movie) pair in the sequences as CSR arrays (crow, col, count).

    Rows and columns are internal indices 0..n_items (row 0, padding, is empty).
    """
    pairs = [np.stack([s[:-1], s[1:]], axis=1) for s in sequences if len(s) > 1]
    if pairs:
        both = np.concatenate(pairs)
        keys, counts = np.unique(both[:, 0] * (n_items + 1) + both[:, 1], return_counts=True)
        rows, cols = keys // (n_items + 1), keys % (n_items + 1)
    else:
        rows = cols = counts = np.zeros(0, dtype=np.int64)
    crow = np.zeros(n_items + 2, dtype=np.int64)
    np.add.at(crow, rows + 1, 1)
    return np.cumsum(crow), cols.astype(np.int64), counts.astype(np.float32)
