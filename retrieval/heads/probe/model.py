"""The tagger: train-set standardisation + a network, raw frozen features → tag logits; saved as a plain dict."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from retrieval.errors import DataError
from retrieval.fileio import atomic_path
from retrieval.heads.probe.networks import Standardize, build_network

__all__ = ["FORMAT", "PREDICT_BATCH", "Tagger"]

#: Rows per forward pass in :meth:`Tagger.predict` (bounds memory, does not change results).
PREDICT_BATCH = 4096

#: Marks a file written by :meth:`Tagger.save`; bumped if the layout changes.
FORMAT = "retrieval.tagger/1"


class Tagger(nn.Module):
    """Standardisation + network: raw frozen features (B, d) → tag logits (B, n_tags).

    Args:
        kind: a key of :data:`~retrieval.heads.probe.networks.NETWORKS`.
        network_args: the network's constructor arguments (``in_dim``, ``out_dim``, ...).
        mean, std: (d,) training-set statistics (see :class:`Standardize`).
        tags: the ``n_tags`` tag names, in output order (defaults to ``"tag0"``, ``"tag1"``, ...).
        info: JSON-able notes saved with the model (training history, feature source, ...).
    """

    def __init__(self, kind: str, network_args: dict, mean: torch.Tensor, std: torch.Tensor,
                 tags: Sequence[str] | None = None, info: dict | None = None):
        super().__init__()
        self.kind = kind
        self.network_args = dict(network_args)
        self.standardize = Standardize(mean, std)
        self.network = build_network(kind, **self.network_args)
        n_tags = self.network.output_dim
        self.tags = list(tags) if tags is not None else [f"tag{j}" for j in range(n_tags)]
        if len(self.tags) != n_tags:
            raise ValueError(f"got {len(self.tags)} tag names for a network with {n_tags} outputs")
        if self.standardize.mean.shape[0] != self.network.in_dim:
            raise ValueError(f"standardisation has {self.standardize.mean.shape[0]} features, the network "
                             f"expects {self.network.in_dim}")
        self.info = dict(info or {})

    @property
    def in_dim(self) -> int:
        return self.network.in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) raw features → (B, n_tags) logits."""
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"tagger expects (batch, {self.in_dim}) features, got {tuple(x.shape)}")
        return self.network(self.standardize(x))

    @torch.no_grad()
    def predict(self, features: np.ndarray | torch.Tensor, batch_size: int = PREDICT_BATCH) -> np.ndarray:
        """p(tag | track) for every row: (n, in_dim) → (n, n_tags) float32 in [0, 1] (eval mode)."""
        was_training = self.training
        self.eval()
        device = self.standardize.mean.device
        x = torch.as_tensor(np.asarray(features, dtype=np.float32))
        out = [torch.sigmoid(self(x[i:i + batch_size].to(device))).cpu() for i in range(0, len(x), batch_size)]
        self.train(was_training)
        return (torch.cat(out) if out else torch.zeros(0, len(self.tags))).numpy()

    def save(self, path: str | Path) -> Path:
        """Write a plain dict (loadable with ``weights_only=True``) atomically to ``path``."""
        payload = {
            "format": FORMAT,
            "kind": self.kind,
            "network_args": self.network_args,
            "tags": self.tags,
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
            "info": self.info,
        }
        path = Path(path)
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> Tagger:
        """Rebuild a tagger written by :meth:`save` (eval mode).

        Raises:
            DataError: the file is missing or is not a saved tagger.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "no such tagger file; train one first (train_tagger(...).save(path))")
        try:
            payload = torch.load(path, map_location=device, weights_only=True)
        except Exception as error:  # noqa: BLE001 -- any unpickling failure means "not a tagger file"
            raise DataError(path, f"not a saved tagger ({type(error).__name__}: {error})") from error
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise DataError(path, f"not a saved tagger (expected format '{FORMAT}')", key="format")
        state = payload["state_dict"]
        tagger = cls(payload["kind"], payload["network_args"], state["standardize.mean"], state["standardize.std"],
                     payload["tags"], payload["info"])
        tagger.load_state_dict(state)
        return tagger.to(device).eval()

