"""SASRec's forward pass for one sequence in numpy: what /recommend runs per request.

A request scores one short sequence. In torch that is ~40 small ops at ~10 µs of dispatch each,
so the framework, not the arithmetic, set the cost (0.6 ms). The same weights in numpy arrays,
computing only what the last position needs in the last block, take a fraction of that. Training
and batch evaluation keep the torch module (services/core/sasrec.py), which stays the reference:
tests check both give the same scores.
"""

from __future__ import annotations

import numpy as np
import torch

from services.core.sasrec import SASRec
from services.core.sasrec_config import PADDING_INDEX

# Abramowitz & Stegun 7.1.26: erf to 1.5e-7, below float32's resolution, for torch's exact GELU.
_P = 0.3275911
_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _erf(x: np.ndarray) -> np.ndarray:
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + _P * a)
    poly = t * (_A[0] + t * (_A[1] + t * (_A[2] + t * (_A[3] + t * _A[4]))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x * np.float32(0.7071067811865476)))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    # sum / n rather than .mean(): the same arithmetic without numpy's Python-level wrapper.
    n = np.float32(x.shape[-1])
    centred = x - x.sum(-1, keepdims=True) / n
    var = (centred * centred).sum(-1, keepdims=True) / n
    return centred / np.sqrt(var + eps) * weight + bias


class NumpySASRec:
    """Inference-only copy of an eval-mode SASRec scoring one sequence at a time."""

    def __init__(self, model: SASRec) -> None:
        c = model.config
        self.n_heads, self.eps = c.n_heads, c.layer_norm_eps
        self.max_seq_length = c.max_seq_length
        self.scale = np.float32(model.embedding_scale)
        with torch.inference_mode():
            model.eval()
            self.items = model.item_table().float().numpy().copy()
            self.output = model.output_table().float().numpy().copy()
            bias = model.item_bias()
            self.bias = bias.float().numpy().copy() if isinstance(bias, torch.Tensor) else None
            state = {
                k: v.float().numpy().copy() for k, v in model.state_dict().items() if v.is_floating_point()
            }
            self.transition_weight = (
                float(model.transition_weight) if c.transition_nnz else 0.0  # type: ignore[arg-type]
            )
        self.positions = state["position_embedding.weight"]
        self.blocks = [
            {
                name: state[f"blocks.{i}.{name}"]
                for name in (
                    "norm1.weight",
                    "norm1.bias",
                    "qkv.weight",
                    "qkv.bias",
                    "out.weight",
                    "out.bias",
                    "norm2.weight",
                    "norm2.bias",
                    "ff.0.weight",
                    "ff.0.bias",
                    "ff.3.weight",
                    "ff.3.bias",
                )
            }  # fmt: skip
            for i in range(c.n_layers)
        ]
        self.final = (state["final_norm.weight"], state["final_norm.bias"])
        if c.transition_nnz:
            self.crow = model.transition_crow.numpy().copy()
            self.col = model.transition_col.numpy().copy()
            self.log_count = np.log1p(model.transition_count.numpy()).astype(np.float32)

    def scores(self, seq: list[int]) -> np.ndarray:
        """Scores (n_items + 1,) after the sequence (internal indices, most recent last); padding -inf."""
        seq = seq[-self.max_seq_length :]
        length = len(seq)
        x = self.items[seq] * self.scale + self.positions[self.max_seq_length - length :]
        for i, block in enumerate(self.blocks):
            x = self._block(x, block, last_only=i == len(self.blocks) - 1)
        hidden = _layer_norm(x[-1], *self.final, self.eps)
        out = self.output @ hidden
        if self.bias is not None:
            out += self.bias
        if self.transition_weight:
            last = seq[-1]
            begin, end = self.crow[last], self.crow[last + 1]
            out[self.col[begin:end]] += self.transition_weight * self.log_count[begin:end]
        out[PADDING_INDEX] = -np.inf
        return out

    def _block(self, x: np.ndarray, w: dict[str, np.ndarray], last_only: bool) -> np.ndarray:
        length, hidden = x.shape
        heads, size = self.n_heads, hidden // self.n_heads
        qkv = _layer_norm(x, w["norm1.weight"], w["norm1.bias"], self.eps) @ w["qkv.weight"].T + w["qkv.bias"]
        q, k, v = (qkv[:, j * hidden : (j + 1) * hidden].reshape(length, heads, size) for j in range(3))
        if last_only:  # later layers read only the last position, so only it is computed
            q, x = q[-1:], x[-1:]
        logits = np.einsum("qhd,khd->hqk", q, k) / np.float32(np.sqrt(size))
        if not last_only:
            logits = np.where(np.tri(length, dtype=bool), logits, -np.inf)
        logits = logits - logits.max(-1, keepdims=True)
        attn = np.exp(logits)
        attn /= attn.sum(-1, keepdims=True)
        mixed = np.einsum("hqk,khd->qhd", attn, v).reshape(len(q), hidden)
        x = x + mixed @ w["out.weight"].T + w["out.bias"]
        h = _layer_norm(x, w["norm2.weight"], w["norm2.bias"], self.eps)
        return x + _gelu(h @ w["ff.0.weight"].T + w["ff.0.bias"]) @ w["ff.3.weight"].T + w["ff.3.bias"]
