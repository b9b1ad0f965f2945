"""SASRec's hyper-parameters as stored next to the weights (config.json), and its padding index."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

PADDING_INDEX = 0  # item row 0 holds no movie: sequences are left-padded with it


@dataclass(frozen=True)
class SASRecConfig:
    """Architecture hyper-parameters (stored as config.json next to the weights)."""

    n_items: int  # real items; the embedding table has n_items + 1 rows (row 0 = padding)
    max_seq_length: int = 50
    hidden_size: int = 64
    n_layers: int = 2
    n_heads: int = 2
    inner_size: int = 256
    hidden_dropout: float = 0.5
    attn_dropout: float = 0.5
    layer_norm_eps: float = 1e-8
    initializer_range: float = 0.02
    # Separate output embeddings can express "j follows i" without "i follows j" (tied ones are
    # symmetric at the first layer); the paper ties them.
    tie_embeddings: bool = True
    # Side features per item projected and added to the item embedding: rare movies then share
    # what their features say, and a movie without interactions is its features (0: none).
    n_item_features: int = 0
    # Non-zeros of the sparse (CSR) feature table; 0 with n_item_features > 0 is the dense table
    # of the first published versions (genres, era, language), still readable.
    feature_nnz: int = 0
    # A learned per-item score offset from the sparse features alone (a linear model of how
    # widely a movie is watched: vote counts, era, genres), the same for every user. It lets a
    # movie without interactions carry its popularity, which dot products with one shared vector
    # learn only slowly.
    feature_bias: bool = False
    # A first-order Markov prior: a learned weight times log(1 + count of "last movie -> movie")
    # in the training sequences, added to every score (0: none). Stored sparse (CSR).
    transition_nnz: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SASRecConfig:
        """A config from its dict; unknown keys are an error, not silently ignored."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown SASRec config keys: {sorted(unknown)}")
        return cls(**data)
