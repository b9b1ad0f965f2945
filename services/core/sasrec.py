"""SASRec: a causal transformer over a user's movie sequence that scores the next movie.

Reference: Wang-Cheng Kang and Julian McAuley, "Self-Attentive Sequential Recommendation",
ICDM 2018 (arXiv:1808.09781). Trained here with full-softmax cross-entropy at every position,
following Klenitskiy & Vasilev, "Turning Dross Into Gold Loss: is BERT4Rec really better than
SASRec?", RecSys 2023 (arXiv:2309.07602). The module layout follows RecBole's
``recbole/model/sequential_recommender/sasrec.py``: config read once, ``forward``,
``calculate_loss``, ``predict``, ``full_sort_predict``.

Item index 0 is padding. Sequences are left-padded, so the most recent movie is always at the
last position and always gets the same position embedding, whatever the user's history length.

Beyond the paper, each optional and stored with the weights (docs/recommender.md has the
measurements): item side features added to the item embeddings and a learned first-order
transition prior (as in FPMC, Rendle et al., WWW 2010). SASRecConfig, stored with the weights, is in
services/core/sasrec_config.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from services.core.sasrec_config import PADDING_INDEX, SASRecConfig


class _Block(nn.Module):
    """One pre-norm transformer block: masked self-attention then a GELU feed-forward."""

    def __init__(self, c: SASRecConfig) -> None:
        super().__init__()
        self.n_heads = c.n_heads
        self.attn_dropout = c.attn_dropout
        self.norm1 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.qkv = nn.Linear(c.hidden_size, 3 * c.hidden_size)
        self.out = nn.Linear(c.hidden_size, c.hidden_size)
        self.norm2 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.ff = nn.Sequential(
            nn.Linear(c.hidden_size, c.inner_size),
            nn.GELU(),
            nn.Dropout(c.hidden_dropout),
            nn.Linear(c.inner_size, c.hidden_size),
        )
        self.drop = nn.Dropout(c.hidden_dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, length, h = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, length, 3, self.n_heads, h // self.n_heads).unbind(2)
        a = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_mask=mask,
            dropout_p=self.attn_dropout if self.training else 0.0,
        )
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, length, h)))
        return x + self.drop(self.ff(self.norm2(x)))


class SASRec(nn.Module):
    """Self-attentive sequential recommender scoring items by dot product with output item embeddings."""

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        if config.hidden_size % config.n_heads:
            raise ValueError("hidden_size must be a multiple of n_heads")
        self.config = config
        self.n_items = config.n_items
        self.max_seq_length = config.max_seq_length
        self.embedding_scale = config.hidden_size**0.5
        self.item_embedding = nn.Embedding(config.n_items + 1, config.hidden_size, padding_idx=PADDING_INDEX)
        self.position_embedding = nn.Embedding(config.max_seq_length, config.hidden_size)
        self.emb_dropout = nn.Dropout(config.hidden_dropout)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.n_layers))
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.output_embedding = (
            None
            if config.tie_embeddings
            else nn.Embedding(config.n_items + 1, config.hidden_size, padding_idx=PADDING_INDEX)
        )
        self.apply(self._init_weights)
        if config.n_item_features and config.feature_nnz:
            self.register_buffer("feature_crow", torch.zeros(config.n_items + 2, dtype=torch.long))
            self.register_buffer("feature_col", torch.zeros(config.feature_nnz, dtype=torch.long))
            self.register_buffer("feature_val", torch.zeros(config.feature_nnz))
            # A bag of the row's feature embeddings, weighted by value: a sparse row times a matrix.
            self.feature_bag = nn.EmbeddingBag(config.n_item_features, config.hidden_size, mode="sum")
            self.feature_bag.weight.data.normal_(0.0, config.initializer_range)
            if config.feature_bias:
                self.bias_bag = nn.EmbeddingBag(config.n_item_features, 1, mode="sum")
                self.bias_bag.weight.data.zero_()
        elif config.n_item_features:
            self.register_buffer("item_features", torch.zeros(config.n_items + 1, config.n_item_features))
            self.feature_projection = nn.Linear(config.n_item_features, config.hidden_size, bias=False)
            self.feature_projection.weight.data.normal_(0.0, config.initializer_range)
        if config.transition_nnz:
            self.register_buffer("transition_crow", torch.zeros(config.n_items + 2, dtype=torch.long))
            self.register_buffer("transition_col", torch.zeros(config.transition_nnz, dtype=torch.long))
            self.register_buffer("transition_count", torch.zeros(config.transition_nnz))
            self.transition_weight = nn.Parameter(torch.tensor(0.5))

    def set_item_features(self, features: torch.Tensor) -> None:
        """Fill the item-feature table (n_items + 1, n_item_features); row 0 (padding) stays zero."""
        self.item_features.copy_(features)
        self.item_features[PADDING_INDEX] = 0.0

    def set_feature_rows(self, crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor) -> None:
        """Fill the sparse item-feature table (CSR over rows 0..n_items; row 0, padding, empty)."""
        if int(crow[1]) != 0:
            raise ValueError("row 0 is padding and must have no features")
        self.feature_crow.copy_(crow)
        self.feature_col.copy_(col)
        self.feature_val.copy_(val)

    def set_transitions(self, crow: torch.Tensor, col: torch.Tensor, count: torch.Tensor) -> None:
        """Fill the CSR transition counts (row: previous item, column: next item)."""
        self.transition_crow.copy_(crow)
        self.transition_col.copy_(col)
        self.transition_count.copy_(count)

    def transition_counts(self, items: torch.Tensor) -> torch.Tensor:
        """Dense rows (len(items), n_items + 1) of transition counts out of each item."""
        crow, n = self.transition_crow, len(items)
        begin, width = crow[items], crow[items + 1] - crow[items]
        rows = torch.repeat_interleave(torch.arange(n, device=items.device), width)
        offsets = torch.arange(int(width.sum()), device=items.device) - torch.repeat_interleave(
            width.cumsum(0) - width, width
        )
        at = torch.repeat_interleave(begin, width) + offsets
        out = torch.zeros(n, self.n_items + 1, device=items.device)
        out[rows, self.transition_col[at]] = self.transition_count[at]
        return out

    def _prior(
        self,
        last_items: torch.Tensor,
        own_targets: torch.Tensor | None = None,
        id_keep: torch.Tensor | None = None,
    ) -> torch.Tensor | float:
        """The Markov prior's scores after each last item; own_targets' own transition is not counted.

        With ``id_keep`` (training), items whose id is dropped have no counts, in or out, as a
        movie without interactions has none.
        """
        if not self.config.transition_nnz:
            return 0.0
        counts = self.transition_counts(last_items)
        if own_targets is not None:
            # In training the counted pair includes the very transition being predicted; drop it
            # so the weight learns what counts from other users are worth, as at evaluation.
            idx = torch.arange(len(counts), device=counts.device)
            counts[idx, own_targets] = (counts[idx, own_targets] - 1.0).clamp_min(0.0)
        if id_keep is not None:
            counts = counts * id_keep[None, :] * id_keep[last_items][:, None]
        return self.transition_weight * torch.log1p(counts)

    def _init_weights(self, module: nn.Module) -> None:
        # Small normal init as in RecBole; the padding row stays zero.
        if isinstance(module, nn.Linear | nn.Embedding):
            module.weight.data.normal_(0.0, self.config.initializer_range)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            module.weight.data[module.padding_idx].zero_()

    def feature_table(self) -> torch.Tensor | None:
        """Each item's projected content features (n_items + 1, hidden), or None without features."""
        if self.config.n_item_features and self.config.feature_nnz:
            crow = self.feature_crow
            return self.feature_bag(self.feature_col, crow[:-1], per_sample_weights=self.feature_val)
        if self.config.n_item_features:
            return self.feature_projection(self.item_features)
        return None

    def item_bias(self) -> torch.Tensor | float:
        """Each item's feature-based score offset (n_items + 1,), or 0 without one."""
        if not self.config.feature_bias:
            return 0.0
        crow = self.feature_crow
        return self.bias_bag(self.feature_col, crow[:-1], per_sample_weights=self.feature_val)[:, 0]

    def item_table(self, id_keep: torch.Tensor | None = None) -> torch.Tensor:
        """Input item embeddings: the id embedding (times id_keep, when given) plus the projected features.

        A movie without interactions has a zero id embedding, so its vector is its features alone;
        training drops the id of a random share of movies (``id_keep`` 0) to learn exactly that.
        """
        table = self.item_embedding.weight
        if id_keep is not None:
            table = table * id_keep[:, None]
        features = self.feature_table()
        return table if features is None else table + features

    def output_table(self, id_keep: torch.Tensor | None = None) -> torch.Tensor:
        """Output item embeddings: the input ones when tied."""
        if self.output_embedding is not None:
            return self.output_embedding.weight
        return self.item_table(id_keep)

    def forward(self, item_seq: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states (batch, length, hidden) for left-padded item sequences (batch, length)."""
        length = item_seq.shape[1]
        if length > self.max_seq_length:
            raise ValueError(f"sequence length {length} exceeds max_seq_length {self.max_seq_length}")
        positions = torch.arange(self.max_seq_length - length, self.max_seq_length, device=item_seq.device)
        # Scaling by sqrt(hidden) as in the paper's code: the item itself dominates the residual
        # stream at the start, so training begins where a bigram model would (much faster).
        x = F.embedding(
            item_seq, self.item_table() if table is None else table, padding_idx=PADDING_INDEX
        ) * self.embedding_scale + self.position_embedding(positions)
        x = self.emb_dropout(x)
        real = item_seq != PADDING_INDEX
        causal = torch.ones(length, length, dtype=torch.bool, device=item_seq.device).tril()
        # Attend to earlier real items; every position may see itself, so no row is fully masked.
        eye = torch.eye(length, dtype=torch.bool, device=item_seq.device)
        mask = ((causal & real[:, None, :]) | eye)[:, None, :, :]
        for block in self.blocks:
            x = block(x, mask)
        return self.final_norm(x)

    def calculate_loss(
        self,
        item_seq: torch.Tensor,
        pos_items: torch.Tensor,
        seen: torch.Tensor | None = None,
        id_keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Full-softmax cross-entropy of the next item at every position where pos_items is not 0.

        ``seen`` (batch, length, n_items + 1), when given, marks the items to leave out of each
        position's softmax: the user's earlier movies, which evaluation masks out as well.
        ``id_keep`` (n_items + 1,), when given, is 0 for the items whose id embedding (and
        transition counts) this step leaves out, in the inputs and the outputs alike (DropoutNet).
        """
        table = self.item_table(id_keep)
        hidden = self.forward(item_seq, table)
        keep = pos_items != PADDING_INDEX
        output = table if self.output_embedding is None else self.output_embedding.weight
        logits = (
            hidden[keep] @ output.T + self._prior(item_seq[keep], pos_items[keep], id_keep) + self.item_bias()
        )
        if seen is not None:
            excluded = seen[keep]
            excluded[torch.arange(len(excluded)), pos_items[keep]] = False  # never hide the target
            logits = logits.masked_fill(excluded, float("-inf"))
        logits[:, PADDING_INDEX] = float("-inf")
        return F.cross_entropy(logits, pos_items[keep])

    def predict(self, item_seq: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Score of one candidate item per sequence (batch,), from the last position."""
        scores = self.full_sort_predict(item_seq)
        return scores[torch.arange(len(items)), items]

    def full_sort_predict(self, item_seq: torch.Tensor) -> torch.Tensor:
        """Scores (batch, n_items + 1) of every item after the last position; padding is -inf."""
        scores = (
            self.forward(item_seq)[:, -1] @ self.output_table().T
            + self._prior(item_seq[:, -1])
            + self.item_bias()
        )
        scores[:, PADDING_INDEX] = float("-inf")
        return scores
