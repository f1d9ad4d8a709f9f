"""The building blocks of a tagger: train-set standardisation and the networks, by name.

μ and σ are the *training-set* mean and standard deviation, stored as buffers inside the model, so a saved tagger
takes raw features and nobody has to carry a scaler around. Networks (:data:`NETWORKS`):

- ``linear``: the linear probe, ``Linear(d, n_tags)``.
- ``mlp``: :class:`~retrieval.encoders.projection.MLPHead` (Linear → BatchNorm → ReLU → Dropout → Linear).
- ``stacked_mlp``: ``n_layers`` × (Linear → ReLU → Dropout) → Linear, the mood MLP of Korzeniowski et al.
  (REFERENCE §2; see :mod:`retrieval.heads.moods`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from retrieval.encoders.projection import MLPHead
from retrieval.errors import ConfigError

__all__ = ["NETWORKS", "STD_FLOOR", "LinearProbe", "StackedMLP", "Standardize", "build_network"]

#: A feature whose training-set standard deviation is below this is constant: it is centred but not scaled
#: (σ := 1), as scikit-learn's StandardScaler does, instead of being blown up by a division by ~0.
STD_FLOOR = 1e-8


class Standardize(nn.Module):
    """``x ↦ (x − mean) / std`` with the statistics stored as buffers (saved in the ``state_dict``).

    Args:
        mean: (d,) per-feature mean of the training set.
        std: (d,) per-feature standard deviation of the training set (values < :data:`STD_FLOOR` become 1).
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        mean = torch.as_tensor(mean, dtype=torch.float32)
        std = torch.as_tensor(std, dtype=torch.float32)
        if mean.dim() != 1 or mean.shape != std.shape:
            raise ValueError(f"mean and std must be (d,) vectors of one size, got {tuple(mean.shape)} and "
                             f"{tuple(std.shape)}")
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", torch.where(std < STD_FLOOR, torch.ones_like(std), std))

    @classmethod
    def fit(cls, features: np.ndarray | torch.Tensor) -> Standardize:
        """Statistics of ``features`` (n, d): mean and population standard deviation (ddof 0) per column."""
        x = torch.as_tensor(np.asarray(features), dtype=torch.float64)
        return cls(x.mean(dim=0).float(), x.std(dim=0, correction=0).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, d) raw features → (B, d) standardised features."""
        return (x - self.mean) / self.std


class LinearProbe(nn.Module):
    """The linear probe: one ``Linear(in_dim, out_dim)`` on (standardised) frozen features.

    Example:
        >>> LinearProbe(8, 3)(torch.zeros(2, 8)).shape
        torch.Size([2, 3])
    """

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.in_dim, self.output_dim = int(in_dim), int(out_dim)
        self.linear = nn.Linear(self.in_dim, self.output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) → (B, out_dim) logits."""
        return self.linear(x)

    def config(self) -> dict[str, int]:
        """Constructor arguments, so a saved tagger can rebuild it."""
        return {"in_dim": self.in_dim, "out_dim": self.output_dim}


class StackedMLP(nn.Module):
    """``n_layers`` × (Linear → ReLU → Dropout) → Linear(out_dim): the mood MLP of Korzeniowski et al.

    Initialised as in the authors' release: hidden layers Kaiming-uniform (ReLU gain), the output layer
    Kaiming-normal with gain 1; biases keep PyTorch's default.

    Args:
        in_dim: input size. out_dim: number of tags (logits).
        n_layers: hidden layers (0 gives a linear model). hidden_dim: units per hidden layer.
        dropout: drop probability after every hidden layer.

    Example:
        >>> StackedMLP(8, 3, n_layers=2, hidden_dim=16).eval()(torch.zeros(5, 8)).shape
        torch.Size([5, 3])
    """

    def __init__(self, in_dim: int, out_dim: int, n_layers: int = 4, hidden_dim: int = 3909, dropout: float = 0.25):
        super().__init__()
        if min(in_dim, out_dim, hidden_dim) < 1 or n_layers < 0:
            raise ValueError(f"need positive dimensions and n_layers ≥ 0, got in={in_dim} out={out_dim} "
                             f"hidden={hidden_dim} n_layers={n_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_dim, self.output_dim = int(in_dim), int(out_dim)
        self.n_layers, self.hidden_dim, self.dropout = int(n_layers), int(hidden_dim), float(dropout)
        layers: list[nn.Module] = []
        width = self.in_dim
        for _ in range(self.n_layers):
            linear = nn.Linear(width, self.hidden_dim)
            nn.init.kaiming_uniform_(linear.weight, nonlinearity="relu")
            layers += [linear, nn.ReLU(), nn.Dropout(self.dropout)]
            width = self.hidden_dim
        out = nn.Linear(width, self.output_dim)
        nn.init.kaiming_normal_(out.weight, nonlinearity="sigmoid")
        self.layers = nn.Sequential(*layers, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) → (B, out_dim) logits."""
        return self.layers(x)

    def config(self) -> dict[str, int | float]:
        """Constructor arguments, so a saved tagger can rebuild it."""
        return {"in_dim": self.in_dim, "out_dim": self.output_dim, "n_layers": self.n_layers,
                "hidden_dim": self.hidden_dim, "dropout": self.dropout}


#: Tagger networks by name: each takes ``in_dim`` and ``out_dim`` (plus its own options) and has ``config()``.
NETWORKS: dict[str, type[nn.Module]] = {"linear": LinearProbe, "mlp": MLPHead, "stacked_mlp": StackedMLP}


def build_network(kind: str, **args) -> nn.Module:
    """``NETWORKS[kind](**args)``; an unknown ``kind`` names the valid ones."""
    if kind not in NETWORKS:
        raise ConfigError(f"unknown tagger network '{kind}'; choose one of: {', '.join(NETWORKS)}")
    return NETWORKS[kind](**args)

