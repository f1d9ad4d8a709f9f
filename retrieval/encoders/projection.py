"""The projection MLP that maps a word vector or a listening vector into the shared space.

The paper's word and cultural towers (REFERENCE §1) are the same two-layer MLP::

    x (B, in_dim) → Linear(in_dim, hidden_dim) → BatchNorm1d → ReLU → Dropout(p) → Linear(hidden_dim, out_dim)

with ``in_dim`` 300 (word2vec) or 200 (ALS factors), ``hidden_dim`` 512, ``p`` 0.5 and ``out_dim`` 256.
The output is *not* normalised here: the joint model L2-normalises every tower's output in one place.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MLPHead"]


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
