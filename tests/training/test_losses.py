"""The triplet loss training uses, pinned against pytorch-metric-learning, a plain loop, and for gradients."""

from __future__ import annotations

import doctest

import pytest
import torch
from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.losses import TripletMarginLoss
from pytorch_metric_learning.reducers import MeanReducer

import retrieval.training.losses
from retrieval.training.losses import DEFAULT_MARGIN, triplet_loss_from_similarity
from retrieval.training.mining import Triplets


def cosine(tag_emb: torch.Tensor, track_emb: torch.Tensor) -> torch.Tensor:
    """(B_tags, B_tracks) cosines, as the joint model computes its "shared" similarity (normalise, then matmul)."""
    return torch.nn.functional.normalize(tag_emb, dim=1) @ torch.nn.functional.normalize(track_emb, dim=1).T


def loss_of_embeddings(
    tag_emb: torch.Tensor, track_emb: torch.Tensor, triplets: Triplets, margin: float = DEFAULT_MARGIN
) -> torch.Tensor:
    return triplet_loss_from_similarity(cosine(tag_emb, track_emb), triplets, margin)


def loop_loss(
    tag_emb: torch.Tensor, track_emb: torch.Tensor, triplets: Triplets, margin: float
) -> torch.Tensor:
    """The paper's objective written naively: mean over all triplets of relu(margin − cos_ap + cos_an)."""
    terms = []
    for a, p, n in zip(*(t.tolist() for t in triplets), strict=True):
        cos_ap = torch.nn.functional.cosine_similarity(tag_emb[a], track_emb[p], dim=0)
        cos_an = torch.nn.functional.cosine_similarity(tag_emb[a], track_emb[n], dim=0)
        terms.append(torch.relu(margin - cos_ap + cos_an))
    return torch.stack(terms).mean()


def pml_loss(
    tag_emb: torch.Tensor, track_emb: torch.Tensor, triplets: Triplets, margin: float, reducer=None
) -> torch.Tensor:
    """pytorch-metric-learning's TripletMarginLoss with its meaning pinned: distance = cosine *similarity*
    (larger = closer, so the term is relu(sim_an − sim_ap + margin)), reducer = mean over all triplets, and explicit
    (anchor, positive, negative) indices into E = [tag_emb; track_emb] (tracks offset by the number of tags)."""
    loss = TripletMarginLoss(margin=margin, distance=CosineSimilarity(),
                             reducer=MeanReducer() if reducer is None else reducer)
    offset = tag_emb.shape[0]
    indices = (triplets.anchors, triplets.positives + offset, triplets.negatives + offset)
    return loss(torch.cat([tag_emb, track_emb]), indices_tuple=indices)


def random_case(seed: int, n_tags: int = 6, n_tracks: int = 9, dim: int = 5, n_triplets: int = 20):
    g = torch.Generator().manual_seed(seed)
    tag_emb = torch.randn(n_tags, dim, generator=g, dtype=torch.float64)
    track_emb = torch.randn(n_tracks, dim, generator=g, dtype=torch.float64)
    triplets = Triplets(
        torch.randint(n_tags, (n_triplets,), generator=g),
        torch.randint(n_tracks, (n_triplets,), generator=g),
        torch.randint(n_tracks, (n_triplets,), generator=g),
    )
    return tag_emb, track_emb, triplets


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("margin", [0.0, DEFAULT_MARGIN, 1.0])
def test_matches_plain_loop(seed: int, margin: float) -> None:
    tag_emb, track_emb, triplets = random_case(seed)
    loss = loss_of_embeddings(tag_emb, track_emb, triplets, margin)
    assert loss.ndim == 0
    assert torch.allclose(loss, loop_loss(tag_emb, track_emb, triplets, margin), atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("margin", [0.0, DEFAULT_MARGIN, 1.0])
def test_matches_pytorch_metric_learning(seed: int, margin: float) -> None:
    tag_emb, track_emb, triplets = random_case(seed)
    ours = loss_of_embeddings(tag_emb, track_emb, triplets, margin)
    assert torch.allclose(ours, pml_loss(tag_emb, track_emb, triplets, margin), atol=1e-12)


def test_gradients_match_pytorch_metric_learning() -> None:
    tag_emb, track_emb, triplets = random_case(7)
    grads = []
    for loss_fn in (loss_of_embeddings, pml_loss):
        tags, tracks = tag_emb.clone().requires_grad_(), track_emb.clone().requires_grad_()
        loss_fn(tags, tracks, triplets, DEFAULT_MARGIN).backward()
        grads.append((tags.grad, tracks.grad))
    for ours, theirs in zip(*grads, strict=True):
        assert torch.allclose(ours, theirs, atol=1e-12)


def test_sign_convention_on_known_cosines() -> None:
    # cos(a, p) = 0 and cos(a, n) = 1: the loss is margin − 0 + 1, not margin + 0 − 1 clipped to 0.
    tag_emb = torch.tensor([[1.0, 0.0]])
    track_emb = torch.tensor([[0.0, 1.0], [3.0, 0.0]])
    one = torch.tensor([0])
    loss = loss_of_embeddings(tag_emb, track_emb, Triplets(one, one, torch.tensor([1])), 0.4)
    assert loss.item() == pytest.approx(1.4)


def test_mean_counts_zero_triplets_unlike_pml_default() -> None:
    # Triplet 0 satisfies the margin (loss 0); triplet 1 violates it (loss 1.4).
    tag_emb = torch.tensor([[1.0, 0.0]])
    track_emb = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    triplets = Triplets(torch.tensor([0, 0]), torch.tensor([0, 1]), torch.tensor([1, 0]))
    ours = loss_of_embeddings(tag_emb, track_emb, triplets, 0.4)
    default = TripletMarginLoss(margin=0.4, distance=CosineSimilarity())(  # AvgNonZeroReducer
        torch.cat([tag_emb, track_emb]),
        indices_tuple=(triplets.anchors, triplets.positives + 1, triplets.negatives + 1),
    )
    assert ours.item() == pytest.approx(0.7)  # (0 + 1.4) / 2
    assert default.item() == pytest.approx(1.4)  # 1.4 / 1: zero triplets ignored
    assert pml_loss(tag_emb, track_emb, triplets, 0.4).item() == pytest.approx(0.7)  # with MeanReducer


def test_zero_when_every_margin_holds() -> None:
    tag_emb = torch.eye(3, requires_grad=True)
    track_emb = torch.cat([torch.eye(3), -torch.eye(3)])  # track k matches tag k; track 3 + k opposes it
    anchors = torch.tensor([0, 1, 2, 0])
    triplets = Triplets(anchors, anchors, torch.tensor([3, 4, 5, 1]))
    loss = loss_of_embeddings(tag_emb, track_emb, triplets, 0.4)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.count_nonzero(tag_emb.grad) == 0


def test_gradient_flows_to_both_towers() -> None:
    g = torch.Generator().manual_seed(0)
    tag_tower, track_tower = torch.nn.Linear(4, 3), torch.nn.Linear(6, 3)
    tag_emb = tag_tower(torch.randn(5, 4, generator=g))
    track_emb = track_tower(torch.randn(5, 6, generator=g))
    rows = torch.arange(5)
    loss = loss_of_embeddings(tag_emb, track_emb, Triplets(rows, rows, rows.roll(1)), 1.0)
    assert loss.item() > 0
    loss.backward()
    for tower in (tag_tower, track_tower):
        assert tower.weight.grad is not None and tower.weight.grad.abs().sum() > 0


def test_no_triplets_gives_zero_attached_to_graph() -> None:
    tag_emb = torch.randn(3, 4, requires_grad=True)
    track_emb = torch.randn(3, 4, requires_grad=True)
    empty = torch.empty(0, dtype=torch.long)
    loss = loss_of_embeddings(tag_emb, track_emb, Triplets(empty, empty, empty))
    assert loss.item() == 0.0
    loss.backward()
    assert tag_emb.grad is not None and torch.count_nonzero(tag_emb.grad) == 0


def test_bad_inputs_raise() -> None:
    rows = torch.arange(2)
    with pytest.raises(ValueError, match="margin"):
        triplet_loss_from_similarity(torch.zeros(2, 2), Triplets(rows, rows, rows), -0.1)


def test_loss_from_similarity_counts_zero_triplets_and_handles_none() -> None:
    similarity = torch.tensor([[1.0, 0.0]], requires_grad=True)
    triplets = Triplets(torch.tensor([0, 0]), torch.tensor([0, 1]), torch.tensor([1, 0]))
    assert triplet_loss_from_similarity(similarity, triplets, 0.4).item() == pytest.approx(0.7)
    empty = torch.empty(0, dtype=torch.long)
    loss = triplet_loss_from_similarity(similarity, Triplets(empty, empty, empty))
    loss.backward()
    assert loss.item() == 0.0 and torch.count_nonzero(similarity.grad) == 0
    with pytest.raises(ValueError, match="matrix"):
        triplet_loss_from_similarity(torch.zeros(3), triplets)


def test_docstring_example_runs() -> None:
    result = doctest.testmod(retrieval.training.losses)
    assert result.attempted > 0 and result.failed == 0
