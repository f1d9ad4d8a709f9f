"""ALS item factors: they carry the listening structure, are seeded, mark unplayed items, and round-trip."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from retrieval.encoders.listening import ItemFactors, confidence_matrix, fit_item_factors
from retrieval.errors import ConfigError, DataError

N_USERS_PER_GROUP = 30
N_ITEMS_PER_GROUP = 15
N_UNPLAYED = 3
# Few factors and strong regularisation for 60 users: with f = 8, λ = 0.1, α = 40 the factors also fit the
# noise and the nearest-neighbour purity drops to 0.85-0.95 depending on the seed.
FIT = {"factors": 4, "iterations": 10, "regularization": 10.0, "alpha": 5.0, "num_threads": 1}


def two_group_plays(seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Users of group g play items of group g often and the other group's rarely; 3 items nobody plays.

    Returns (plays (60 × 33), item ids, item group: 0, 1, or -1 for unplayed).
    """
    rng = np.random.default_rng(seed)
    n_items = 2 * N_ITEMS_PER_GROUP
    user_group = np.repeat([0, 1], N_USERS_PER_GROUP)
    item_group = np.repeat([0, 1], N_ITEMS_PER_GROUP)
    same = user_group[:, None] == item_group[None, :]
    played = rng.random((len(user_group), n_items)) < np.where(same, 0.5, 0.05)
    counts = played * rng.integers(1, 20, size=played.shape)
    counts = np.hstack([counts, np.zeros((len(user_group), N_UNPLAYED), dtype=counts.dtype)])
    items = np.array([f"SOITEM{i:04d}" for i in range(n_items + N_UNPLAYED)])
    return sp.csr_matrix(counts), items, np.concatenate([item_group, -np.ones(N_UNPLAYED, dtype=int)])


def nearest_neighbour_purity(vectors: np.ndarray, groups: np.ndarray) -> float:
    """Fraction of items whose cosine nearest neighbour (itself excluded) is in the same group."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return float(np.mean(groups[similarity.argmax(axis=1)] == groups))


@pytest.fixture(scope="module")
def fitted() -> tuple[ItemFactors, np.ndarray]:
    plays, items, groups = two_group_plays()
    return fit_item_factors(plays, items=items, seed=0, **FIT), groups


def test_factors_carry_the_listening_groups(fitted):
    factors, groups = fitted
    played = groups >= 0
    assert nearest_neighbour_purity(factors.vectors[played], groups[played]) >= 0.95
    # the same check on random vectors of the same shape is at chance level (~0.5): the test can fail
    noise = np.random.default_rng(1).normal(size=factors.vectors[played].shape)
    assert nearest_neighbour_purity(noise, groups[played]) < 0.8


def test_shapes_dtypes_and_metadata(fitted):
    factors, groups = fitted
    assert factors.vectors.shape == (len(groups), FIT["factors"]) and factors.vectors.dtype == np.float32
    assert factors.factors == FIT["factors"] and len(factors) == len(groups)
    assert factors.meta["confidence"] == "linear" and factors.meta["alpha"] == FIT["alpha"]


def test_unplayed_items_are_marked_and_zero(fitted):
    factors, groups = fitted
    np.testing.assert_array_equal(factors.has_data, groups >= 0)
    # implicit's CPU solver already leaves them at 0; fit_item_factors guarantees it for any solver
    assert not factors.vectors[~factors.has_data].any()
    assert np.linalg.norm(factors.vectors[factors.has_data], axis=1).min() > 0


def test_lookup_masks_unknown_and_unplayed_ids(fitted):
    factors, _ = fitted
    ids = ["SOITEM0003", "NOT_AN_ITEM", factors.items[-1], "SOITEM0000"]
    vectors, mask = factors.lookup(ids)
    assert mask.tolist() == [True, False, False, True]
    np.testing.assert_array_equal(vectors[0], factors.vectors[3])
    np.testing.assert_array_equal(vectors[3], factors.vectors[0])
    assert not vectors[1:3].any()
    empty_vectors, empty_mask = factors.lookup([])
    assert empty_vectors.shape == (0, FIT["factors"]) and empty_mask.shape == (0,)


def test_same_seed_same_factors_other_seed_other_factors(fitted):
    factors, _ = fitted
    plays, items, _ = two_group_plays()
    again = fit_item_factors(plays, items=items, seed=0, **FIT)
    np.testing.assert_array_equal(again.vectors, factors.vectors)
    other = fit_item_factors(plays, items=items, seed=1, **FIT)
    assert not np.allclose(other.vectors, factors.vectors)


def test_confidence_formulas():
    plays = sp.csr_matrix(np.array([[0, 3, 1], [2, 0, 0]], dtype=np.int64))
    linear = confidence_matrix(plays, alpha=40.0).toarray()
    np.testing.assert_allclose(linear, [[0, 1 + 40 * 3, 1 + 40 * 1], [1 + 40 * 2, 0, 0]])
    log = confidence_matrix(plays, alpha=2.0, scheme="log", epsilon=0.5).toarray()
    np.testing.assert_allclose(log[0, 1], 1 + 2.0 * np.log(1 + 3 / 0.5), rtol=1e-6)
    assert log[0, 0] == 0 and confidence_matrix(plays).nnz == 3  # unplayed pairs stay implicit
    with pytest.raises(ConfigError, match="linear"):
        confidence_matrix(plays, scheme="sqrt")


def test_log_confidence_also_fits():
    plays, items, groups = two_group_plays()
    factors = fit_item_factors(plays, items=items, confidence="log", **FIT)
    played = groups >= 0
    assert nearest_neighbour_purity(factors.vectors[played], groups[played]) >= 0.95


def test_bad_play_matrices_are_rejected():
    with pytest.raises(ValueError, match="non-negative"):
        fit_item_factors(sp.csr_matrix(np.array([[1.0, -2.0]])), **FIT)
    with pytest.raises(ValueError, match="sparse"):
        fit_item_factors(np.ones((2, 2)), **FIT)
    with pytest.raises(ValueError, match="2 item columns"):
        fit_item_factors(sp.csr_matrix(np.ones((2, 2))), items=["a"], **FIT)
    with pytest.raises(ConfigError):
        fit_item_factors(sp.csr_matrix(np.ones((2, 2))), factors=0)
    with pytest.raises(ConfigError, match="alpha"):
        fit_item_factors(sp.csr_matrix(np.ones((2, 2))), alpha=-1.0)


def test_save_load_round_trip(fitted, tmp_path):
    factors, _ = fitted
    path = tmp_path / "factors.npz"
    factors.save(path)
    loaded = ItemFactors.load(path)
    np.testing.assert_array_equal(loaded.vectors, factors.vectors)
    np.testing.assert_array_equal(loaded.items, factors.items)
    np.testing.assert_array_equal(loaded.has_data, factors.has_data)
    assert loaded.meta == factors.meta
    assert [p.name for p in tmp_path.iterdir()] == ["factors.npz"]  # no temporary file left behind


def test_save_works_without_the_npz_suffix(fitted, tmp_path):
    factors, _ = fitted
    factors.save(tmp_path / "factors")
    np.testing.assert_array_equal(ItemFactors.load(tmp_path / "factors").vectors, factors.vectors)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="missing.npz"):
        ItemFactors.load(tmp_path / "missing.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="garbage.npz"):
        ItemFactors.load(garbage)
    partial = tmp_path / "partial.npz"
    np.savez(partial, vectors=np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(DataError, match="items"):
        ItemFactors.load(partial)


def test_inconsistent_arrays_are_rejected():
    with pytest.raises(ValueError, match="same number"):
        ItemFactors(np.zeros((3, 2)), np.array(["a", "b"]), np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="unique"):
        ItemFactors(np.zeros((2, 2)), np.array(["a", "a"]), np.ones(2, dtype=bool))
