"""The triplet loss of the shared tag-track space (Won et al., ICASSP 2021).

For triplets ``(a, p, n)`` of a tag ``a``, a track ``p`` carrying the tag and a track ``n`` not carrying it, and a
tag × track similarity matrix ``S`` (the cosine of the two towers' embeddings, or a gated mix of two such cosines),
the paper minimises the mean over **all** ``T`` triplets

    L = (1 / T) Σ_t max(0, margin − S[a_t, p_t] + S[a_t, n_t]),    margin = 0.4

Triplets that already satisfy the margin contribute 0 but still count in ``T``.

In pytorch-metric-learning's terms (pinned in ``tests/training/test_losses.py``, the library is not imported here)
this is ``TripletMarginLoss(margin, distance=CosineSimilarity(), reducer=MeanReducer())`` on the concatenation
``E = [tag_emb; track_emb]`` with the explicit ``indices_tuple = (a, n_tags + p, n_tags + n)``. It is *not* PML's
default: ``TripletMarginLoss`` averages only the non-zero terms (``AvgNonZeroReducer``), which keeps the loss large
as the model improves. The loss takes a similarity matrix rather than embeddings because the gated model's score is
not a plain cosine of two embeddings.
"""

from __future__ import annotations

import torch

from retrieval.training.mining import Triplets

#: The paper's margin between cos(anchor, positive) and cos(anchor, negative).
DEFAULT_MARGIN = 0.4


def triplet_loss_from_similarity(
    similarity: torch.Tensor, triplets: Triplets, margin: float = DEFAULT_MARGIN
) -> torch.Tensor:
    """Mean triplet hinge over explicit (tag, positive track, negative track) triplets.

        L = (1 / T) Σ_t max(0, margin − S[a_t, p_t] + S[a_t, n_t])

    Args:
        similarity: ``(B_tags, B_tracks)`` scores ``S[i, j]`` of tag ``i`` and track ``j`` (higher = closer),
            with gradient.
        triplets: ``T`` triplets; ``anchors`` index rows, ``positives``/``negatives`` index columns.
        margin: required gap ``S[a, p] − S[a, n]``, ≥ 0.

    Returns:
        Scalar loss; 0 (attached to the graph, zero gradients) when ``T = 0``.

    Raises:
        ValueError: ``similarity`` is not a matrix, or ``margin`` < 0.

    Example:
        >>> import torch
        >>> from retrieval.training.mining import Triplets
        >>> similarity = torch.tensor([[1.0, 0.0]])  # tag 0 is closest to track 0
        >>> zero = torch.tensor([0])
        >>> triplet_loss_from_similarity(similarity, Triplets(zero, zero, torch.tensor([1])), 0.4).item()
        0.0
    """
    if similarity.ndim != 2:
        raise ValueError(
            f"similarity must be a (B_tags, B_tracks) matrix, got shape {tuple(similarity.shape)}"
        )
    if margin < 0:
        raise ValueError(f"margin must be ≥ 0, got {margin}")
    anchors, positives, negatives = (index.to(similarity.device) for index in triplets)
    if anchors.numel() == 0:
        return similarity.sum() * 0
    violation = margin - similarity[anchors, positives] + similarity[anchors, negatives]
    return torch.relu(violation).mean()
