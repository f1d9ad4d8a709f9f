"""The projection MLP that maps a word vector or a listening vector into the shared space.

The paper's word and cultural towers (REFERENCE §1) are the same two-layer MLP::

    x (B, in_dim) → Linear(in_dim, hidden_dim) → BatchNorm1d → ReLU → Dropout(p) → Linear(hidden_dim, out_dim)

with ``in_dim`` 300 (word2vec) or 200 (ALS factors), ``hidden_dim`` 512, ``p`` 0.5 and ``out_dim`` 256.
The output is *not* normalised here: the joint model L2-normalises every tower's output in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["FoldedMLP", "MLPHead"]


class MLPHead(nn.Module):
    """Linear → BatchNorm1d → ReLU → Dropout → Linear.

    Args:
        in_dim: size of the input vectors.
        out_dim: size of the output vectors (the shared space).
        hidden_dim: width of the hidden layer.
        dropout: drop probability after the hidden layer (active in ``train()`` mode only).

    Example:
        >>> head = MLPHead(300, out_dim=256)
        >>> head.eval()(torch.randn(4, 300)).shape
        torch.Size([4, 256])
    """

    def __init__(self, in_dim: int, out_dim: int = 256, hidden_dim: int = 512, dropout: float = 0.5):
        super().__init__()
        if min(in_dim, out_dim, hidden_dim) < 1:
            raise ValueError(f"dimensions must be positive: in={in_dim} hidden={hidden_dim} out={out_dim}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_dim = in_dim
        self.output_dim = out_dim
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.layers = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project ``x`` (B, in_dim) to (B, output_dim).

        In ``train()`` mode BatchNorm needs B ≥ 2; in ``eval()`` mode any B ≥ 1 works.
        """
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"MLPHead expects (batch, {self.in_dim}) inputs, got {tuple(x.shape)}")
        return self.layers(x)

    def config(self) -> dict[str, int | float]:
        """The constructor arguments, JSON-able, so a checkpoint can rebuild this head."""
        return {"in_dim": self.in_dim, "out_dim": self.output_dim, "hidden_dim": self.hidden_dim,
                "dropout": self.dropout}

    def folded(self) -> FoldedMLP:
        """This head in eval mode as two numpy affine maps, the BatchNorm folded into the first (see
        :class:`FoldedMLP`). A snapshot: later training does not change it."""
        first, norm, _, _, second = self.layers
        with torch.no_grad():
            scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            w1 = (first.weight * scale[:, None]).T
            b1 = (first.bias - norm.running_mean) * scale + norm.bias
            arrays = [t.detach().to("cpu", torch.float32).numpy().copy()
                      for t in (w1, b1, second.weight.T, second.bias)]
        return FoldedMLP(*arrays)


@dataclass(frozen=True)
class FoldedMLP:
    """An :class:`MLPHead` in eval mode for a few rows at a time, in numpy:

        y = relu(x·W1 + b1)·W2 + b2,   W1 = Wᵀ·γ/√(σ² + ε),   b1 = (b − μ)·γ/√(σ² + ε) + β

    (Linear (W, b) and BatchNorm (γ, β, running μ, σ²) folded; dropout is the identity in eval mode). The same
    function as the head's ``eval()`` forward to float32 rounding; for one query it is ~3× faster than torch's
    per-layer dispatch, which is most of the MLP's share of a warm search.

    Attributes:
        w1: (in_dim, hidden_dim); b1: (hidden_dim,); w2: (hidden_dim, out_dim); b2: (out_dim,).
    """

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(B, in_dim) → (B, out_dim) float32."""
        return np.maximum(x @ self.w1 + self.b1, 0.0) @ self.w2 + self.b2
