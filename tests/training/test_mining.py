"""Samplers and in-batch negative mining: shapes, invariants over many seeds, distributions, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
import torch

from retrieval.errors import ConfigError
from retrieval.training.mining import (
    MINERS,
    SAMPLERS,
    BalancedSampler,
    RandomSampler,
    Triplets,
    batch_similarity,
    build_sampler,
    is_weighted_miner,
    mine_negatives,
)

SEEDS = range(30)


def random_labels(seed: int, n_tracks: int = 60, n_tags: int = 8, density: float = 0.25) -> torch.Tensor:
    """Multi-hot labels with an untagged track (row 0) and an empty tag (the last column)."""
    rng = np.random.default_rng(seed)
    labels = rng.random((n_tracks, n_tags)) < density
    labels[0] = False
    labels[:, -1] = False
    labels[1:, 0] |= ~labels[1:].any(axis=1)  # every other track carries ≥ 1 tag
    return torch.from_numpy(labels)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- 1. shapes and dtypes ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sample_shapes_and_dtypes(name: str) -> None:
    tags, positives = build_sampler(name, random_labels(0)).sample(16, generator(0))
    assert tags.shape == positives.shape == (16,)
    assert tags.dtype == positives.dtype == torch.long


def test_triplets_shapes_and_dtypes() -> None:
    labels = random_labels(0)
    tags, positives = BalancedSampler(labels).sample(32, generator(0))
    triplets = mine_negatives(tags, positives, labels, generator=generator(1))
    assert isinstance(triplets, Triplets)
    assert all(t.dtype == torch.long and t.ndim == 1 for t in triplets)
    assert len({t.numel() for t in triplets}) == 1
    assert triplets.n_dropped(32) == 32 - triplets.anchors.numel()


# --- 3. invariants over many seeds ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_positives_carry_their_tag_and_empty_rows_never_drawn(name: str) -> None:
    for seed in SEEDS:
        labels = random_labels(seed)
        tags, positives = build_sampler(name, labels).sample(64, generator(seed))
        assert labels[positives, tags].all()
        assert not (positives == 0).any(), "the untagged track was drawn"
        assert not (tags == labels.shape[1] - 1).any(), "the empty tag was drawn"


def test_balanced_sampler_lists_empty_tags_and_random_sampler_untagged_tracks() -> None:
    labels = random_labels(0)
    assert BalancedSampler(labels).empty_tags.tolist() == [labels.shape[1] - 1]
    assert RandomSampler(labels).untagged_tracks.tolist() == [0]


@pytest.mark.parametrize("weighted", [False, True])
def test_negative_never_carries_the_anchor_tag(weighted: bool) -> None:
    for seed in SEEDS:
        labels = random_labels(seed)
        tags, positives = BalancedSampler(labels).sample(48, generator(seed))
        similarity = torch.rand((48, 48), generator=generator(seed + 1000)) * 2 - 1
        triplets = mine_negatives(
            tags, positives, labels, similarity=similarity, weighted=weighted, generator=generator(seed)
        )
        assert triplets.anchors.numel() > 0
        negative_tracks = triplets.negatives_tracks(positives)
        assert not labels[negative_tracks, tags[triplets.anchors]].any()
        assert labels[positives[triplets.positives], tags[triplets.anchors]].all()
        assert torch.equal(triplets.anchors, triplets.positives)
        assert (negative_tracks != positives[triplets.anchors]).all()
        # A repeated track is only ever chosen through its first column.
        first_column = {}
        for column, track in enumerate(positives.tolist()):
            first_column.setdefault(track, column)
        assert all(first_column[positives[j].item()] == j for j in triplets.negatives.tolist())


def test_rows_without_valid_negative_are_dropped() -> None:
    # Tag 0 is carried by every track, so its rows have no negative; tag 1 rows do.
    labels = torch.tensor([[1, 1], [1, 0], [1, 0], [1, 1]], dtype=torch.bool)
    tags = torch.tensor([0, 1, 0, 1])
    positives = torch.tensor([1, 0, 2, 3])
    triplets = mine_negatives(tags, positives, labels, generator=generator(0))
    assert triplets.anchors.tolist() == [1, 3]
    assert triplets.n_dropped(4) == 2
    assert set(triplets.negatives_tracks(positives).tolist()) <= {1, 2}


def test_all_rows_dropped_gives_empty_triplets() -> None:
    labels = torch.ones((3, 1), dtype=torch.bool)
    triplets = mine_negatives(
        torch.zeros(3, dtype=torch.long), torch.arange(3), labels, generator=generator(0)
    )
    assert triplets.anchors.numel() == 0 and triplets.n_dropped(3) == 3


# --- 2. distributions (seeded, so deterministic; tolerances would catch the wrong sampler) ----------


def chi_square(counts: np.ndarray, expected: np.ndarray) -> float:
    return float(((counts - expected) ** 2 / expected).sum())


def skewed_labels() -> torch.Tensor:
    """10 tags carried by 1, 2, 4, ..., 512 tracks (disjoint), so frequency-driven sampling is obvious."""
    sizes = 2 ** np.arange(10)
    labels = np.zeros((sizes.sum(), len(sizes)), dtype=bool)
    labels[np.arange(sizes.sum()), np.repeat(np.arange(len(sizes)), sizes)] = True
    return torch.from_numpy(labels)


# 99.9 % quantile of chi-square with 9 degrees of freedom.
CHI2_DF9_999 = 27.88


def test_balanced_sampler_visits_tags_uniformly() -> None:
    n = 20_000
    tags, _ = BalancedSampler(skewed_labels()).sample(n, generator(0))
    counts = np.bincount(tags.numpy(), minlength=10)
    assert chi_square(counts, np.full(10, n / 10)) < CHI2_DF9_999


def test_balanced_sampler_draws_tracks_of_a_tag_uniformly() -> None:
    labels = skewed_labels()
    n = 50_000
    tags, positives = BalancedSampler(labels).sample(n, generator(1))
    tracks_of_tag3 = positives[tags == 3].numpy()  # tag 3 has 8 tracks: rows 7..14
    counts = np.bincount(tracks_of_tag3 - 7, minlength=8)
    assert chi_square(counts, np.full(8, len(tracks_of_tag3) / 8)) < 26.1  # df 7, 99.9 %


def test_random_sampler_follows_tag_frequency() -> None:
    labels = skewed_labels()
    n = 20_000
    tags, _ = RandomSampler(labels).sample(n, generator(0))
    counts = np.bincount(tags.numpy(), minlength=10)
    frequency = labels.sum(dim=0).numpy() / labels.shape[0]
    assert chi_square(counts, n * frequency) < CHI2_DF9_999
    assert chi_square(counts, np.full(10, n / 10)) > 1000  # far from uniform


def test_uniform_mining_counts_a_repeated_track_once() -> None:
    # Row 0 (tag 0) has negatives: track 1 in 5 columns, tracks 2 and 3 once each → each 1/3.
    labels = torch.tensor([[1, 0], [0, 1], [0, 1], [0, 1]], dtype=torch.bool)
    tags = torch.tensor([0, 1, 1, 1, 1, 1, 1, 1])
    positives = torch.tensor([0, 1, 1, 1, 1, 1, 2, 3])
    g = generator(0)
    chosen = torch.cat(
        [mine_negatives(tags, positives, labels, generator=g).negatives[:1] for _ in range(3000)]
    )
    counts = np.bincount(positives[chosen].numpy(), minlength=4)[1:]
    assert chi_square(counts, np.full(3, 1000.0)) < 13.8  # df 2, 99.9 %


def test_weighted_mining_follows_similarity() -> None:
    # Tracks 0..n-1 carry tag 0 and are the rows; tracks n..2n-1 carry tag 1 and are the only negatives.
    n = 200
    labels = torch.zeros((2 * n, 2), dtype=torch.bool)
    labels[:n, 0] = True
    labels[n:, 1] = True
    tags = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)])
    positives = torch.arange(2 * n)
    similarity = torch.full((2 * n, 2 * n), -0.8)
    similarity[:, n : n + n // 4] = 0.8  # a quarter of tag-1 tracks are hard negatives for every row
    hard = torch.zeros(2 * n, dtype=torch.bool)
    hard[n : n + n // 4] = True

    weighted = mine_negatives(
        tags, positives, labels, similarity=similarity, weighted=True, generator=generator(0)
    )
    uniform = mine_negatives(tags, positives, labels, generator=generator(0))
    tag0 = weighted.anchors < n
    # P(hard) = (n/4 · 0.9) / (n/4 · 0.9 + 3n/4 · 0.1) = 0.75 under weighting, 0.25 uniformly.
    assert abs(hard[weighted.negatives[tag0]].float().mean().item() - 0.75) < 0.1
    assert abs(hard[uniform.negatives[uniform.anchors < n]].float().mean().item() - 0.25) < 0.1


def test_weighted_mining_tolerates_cosine_minus_one() -> None:
    labels = torch.tensor([[1, 0], [0, 1], [0, 1]], dtype=torch.bool)
    triplets = mine_negatives(
        torch.tensor([0, 1, 1]),
        torch.tensor([0, 1, 2]),
        labels,
        similarity=-torch.ones((3, 3)),
        weighted=True,
        generator=generator(0),
    )
    assert triplets.anchors.tolist() == [0, 1, 2]


# --- determinism, inputs, registries -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_same_seed_same_batch(name: str) -> None:
    labels = random_labels(3)

    def run(seed: int) -> list[torch.Tensor]:
        g = generator(seed)
        tags, positives = build_sampler(name, labels).sample(32, g)
        similarity = torch.rand((32, 32), generator=g)
        return [
            tags,
            positives,
            *mine_negatives(tags, positives, labels, similarity=similarity, weighted=True, generator=g),
        ]

    assert all(torch.equal(a, b) for a, b in zip(run(5), run(5), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(run(5), run(6), strict=True))


def test_scipy_csr_and_numpy_labels_match_dense() -> None:
    labels = random_labels(4)
    for other in (scipy.sparse.csr_matrix(labels.numpy()), labels.numpy().astype(np.int8)):
        a = BalancedSampler(labels).sample(64, generator(0))
        b = BalancedSampler(other).sample(64, generator(0))
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_bad_inputs_raise() -> None:
    labels = random_labels(0)
    tags, positives = torch.tensor([1, 2]), torch.tensor([1, 2])
    with pytest.raises(ValueError, match="similarity"):
        mine_negatives(tags, positives, labels, weighted=True, generator=generator(0))
    with pytest.raises(ValueError, match="shape"):
        mine_negatives(
            tags, positives, labels, similarity=torch.zeros(3, 3), weighted=True, generator=generator(0)
        )
    with pytest.raises(ValueError, match="equal length"):
        mine_negatives(tags, positives[:1], labels, generator=generator(0))
    with pytest.raises(ValueError, match="no tag"):
        BalancedSampler(torch.zeros((3, 2), dtype=torch.bool))
    with pytest.raises(ValueError, match="no track"):
        RandomSampler(torch.zeros((3, 2), dtype=torch.bool))
    with pytest.raises(ValueError, match="batch_size"):
        RandomSampler(labels).sample(0, generator(0))
    with pytest.raises(ValueError, match="2-D"):
        RandomSampler(torch.ones(3, dtype=torch.bool))


def test_registries_reject_unknown_names_and_list_valid_ones() -> None:
    assert (
        set(MINERS) == {"uniform", "weighted"}
        and is_weighted_miner("weighted")
        and not is_weighted_miner("uniform")
    )
    with pytest.raises(ConfigError, match="balanced, random"):
        build_sampler("hard", random_labels(0))
    with pytest.raises(ConfigError, match="uniform, weighted"):
        is_weighted_miner("hardest")


def test_batch_similarity_is_detached_cosine() -> None:
    tag_emb = torch.randn(4, 3, generator=generator(0), requires_grad=True)
    track_emb = torch.randn(5, 3, generator=generator(1))
    similarity = batch_similarity(tag_emb * 2, track_emb)
    expected = torch.nn.functional.cosine_similarity(tag_emb[:, None], track_emb[None], dim=2)
    assert not similarity.requires_grad
    assert torch.allclose(similarity, expected.detach(), atol=1e-6)
