"""The triplet loss of the shared tag-track space (Won et al., ICASSP 2021).

For triplets ``(a, p, n)`` of a tag embedding ``a``, a track ``p`` carrying the tag and a track ``n`` not
carrying it, the paper minimises the mean over **all** ``T`` triplets

    L = (1 / T) Σ_t max(0, margin − cos(a_t, p_t) + cos(a_t, n_t)),    margin = 0.4

Triplets that already satisfy the margin contribute 0 but still count in ``T``. This is *not*
pytorch-metric-learning's default: its ``TripletMarginLoss`` averages only the non-zero terms
(``AvgNonZeroReducer``), which makes the loss stay large as the model improves. We therefore pass
``reducer=MeanReducer()`` explicitly.

Two entry points compute the same objective:

- :class:`TripletLoss` takes the two towers' embeddings (pytorch-metric-learning does the cosines);
- :func:`triplet_loss_from_similarity` takes a ready ``(B_tags, B_tracks)`` similarity matrix, for models
  whose score is not a plain cosine of two embeddings (e.g. a gated mix of two spaces).
"""

from __future__ import annotations

import torch
from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.losses import TripletMarginLoss
from pytorch_metric_learning.reducers import MeanReducer

from retrieval.training.mining import Triplets

#: The paper's margin between cos(anchor, positive) and cos(anchor, negative).
DEFAULT_MARGIN = 0.4


class TripletLoss(torch.nn.Module):
    """Mean cosine triplet loss over explicit (tag, positive track, negative track) triplets.

    Implemented with pytorch-metric-learning on the concatenation ``E = [tag_emb; track_emb]``: a triplet
    ``(a, p, n)`` becomes the indices ``(a, n_tags + p, n_tags + n)`` into ``E``. PML's ``CosineSimilarity``
    is an *inverted* distance (larger = closer), so its margin term is ``sim_an − sim_ap`` and the
    per-triplet loss is ``relu(sim_an − sim_ap + margin)``: the formula above (pinned against a plain loop
    in the tests).

    Args:
        margin: required gap ``cos(a, p) − cos(a, n)``; the paper uses 0.4.

    Example:
        >>> import torch
        >>> loss_fn = TripletLoss(margin=0.4)
        >>> tag_emb, track_emb = torch.randn(4, 8), torch.randn(4, 8)
        >>> idx = torch.tensor([0, 1])
        >>> loss = loss_fn(tag_emb, track_emb, Triplets(idx, idx, torch.tensor([2, 3])))
        >>> loss.ndim
        0
    """

    def __init__(self, margin: float = DEFAULT_MARGIN):
        super().__init__()
        if margin < 0:
            raise ValueError(f"margin must be ≥ 0, got {margin}")
        self.margin = margin
        self._loss = TripletMarginLoss(margin=margin, distance=CosineSimilarity(), reducer=MeanReducer())

    def forward(self, tag_emb: torch.Tensor, track_emb: torch.Tensor, triplets: Triplets) -> torch.Tensor:
        """Mean triplet loss.

        Args:
            tag_emb: ``(B_tags, D)`` anchor (tag) embeddings; need not be normalised.
            track_emb: ``(B_tracks, D)`` track embeddings; need not be normalised.
            triplets: ``T`` triplets; ``anchors`` index ``tag_emb``, ``positives``/``negatives`` index
                ``track_emb``.

        Returns:
            Scalar loss. With no triplet (``T = 0``) it is 0, still attached to the graph (zero gradients).
        """
        if tag_emb.ndim != 2 or track_emb.ndim != 2 or tag_emb.shape[1] != track_emb.shape[1]:
            raise ValueError(
                f"tag_emb and track_emb must be (B, D) with the same D, got {tuple(tag_emb.shape)} and "
                f"{tuple(track_emb.shape)}"
            )
        offset = tag_emb.shape[0]
        device = tag_emb.device
        anchors, positives, negatives = (index.to(device) for index in triplets)
        embeddings = torch.cat([tag_emb, track_emb.to(tag_emb.dtype)], dim=0)
        indices = (anchors, positives + offset, negatives + offset)
        return self._loss(embeddings, indices_tuple=indices)


def triplet_loss_from_similarity(
    similarity: torch.Tensor, triplets: Triplets, margin: float = DEFAULT_MARGIN
) -> torch.Tensor:
    """The same mean triplet loss, from a precomputed tag × track similarity matrix.

        L = (1 / T) Σ_t max(0, margin − S[a_t, p_t] + S[a_t, n_t])

    With ``S = cos(tag_emb, track_emb)`` this equals :class:`TripletLoss` (tested).

    Args:
        similarity: ``(B_tags, B_tracks)`` scores ``S[i, j]`` of tag ``i`` and track ``j`` (higher = closer),
            with gradient.
        triplets: ``T`` triplets; ``anchors`` index rows, ``positives``/``negatives`` index columns.
        margin: required gap ``S[a, p] − S[a, n]``.

    Returns:
        Scalar loss; 0 (attached to the graph, zero gradients) when ``T = 0``.
    """
    if similarity.ndim != 2:
        raise ValueError(
            f"similarity must be a (B_tags, B_tracks) matrix, got shape {tuple(similarity.shape)}"
        )
    anchors, positives, negatives = (index.to(similarity.device) for index in triplets)
    if anchors.numel() == 0:
        return similarity.sum() * 0
    violation = margin - similarity[anchors, positives] + similarity[anchors, negatives]
    return torch.relu(violation).mean()
