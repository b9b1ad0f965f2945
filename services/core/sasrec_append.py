"""New items for a trained SASRec: movies nobody rated, appended with their content features.

Used by the training host when it publishes (services/train/recommender/catalog_growth.py);
the result is an ordinary SASRec that serving loads like any other.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from services.core.sasrec import SASRec


def append_items(model: SASRec, crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor) -> SASRec:
    """A copy of a sparse-feature model with new items after its own, given their CSR feature rows.

    The new items (rows 1..m of the CSR, row 0 empty) get a zero id embedding and no transition
    counts, so their vectors are their features alone: what training with dropped ids learned
    to rank. Nothing is retrained; the known items keep their index and their scores.
    """
    c = model.config
    if not (c.n_item_features and c.feature_nnz):
        raise ValueError("only a model with sparse item features can take new items")
    added = len(crow) - 2
    nnz = int(crow[-1])
    config = replace(c, n_items=c.n_items + added, feature_nnz=c.feature_nnz + nnz)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for name in ("item_embedding.weight", "output_embedding.weight"):
        if name in state:
            state[name] = torch.cat([state[name], state[name].new_zeros(added, c.hidden_size)])
    state["feature_crow"] = torch.cat([state["feature_crow"], crow[2:] + c.feature_nnz])
    state["feature_col"] = torch.cat([state["feature_col"], col])
    state["feature_val"] = torch.cat([state["feature_val"], val.to(state["feature_val"].dtype)])
    if c.transition_nnz:
        last = state["transition_crow"][-1:]
        state["transition_crow"] = torch.cat([state["transition_crow"], last.repeat(added)])
    out = SASRec(config)
    out.load_state_dict(state)
    return out.eval()
