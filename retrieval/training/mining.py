"""Triplet mining: which (tag, positive track, negative track) triplets a training batch holds.

Tags are anchors; a track carrying the tag is a positive; a track that does not carry it is a negative.
A batch is built in two steps (Won et al., ICASSP 2021):

1. A *sampler* draws ``B`` (tag, positive track) pairs from the multi-hot training labels:

   - ``"random"`` (:class:`RandomSampler`): a random labelled track, then one of its tags uniformly.
     Frequent tags are drawn in proportion to how many tracks carry them.
   - ``"balanced"`` (:class:`BalancedSampler`): a tag uniformly, then a random training track carrying it.
     Every tag is visited equally often, however rare it is.

2. :func:`mine_negatives` picks, for each row ``i``, a negative among the batch's *other* positive tracks
   (in-batch negatives) that do not carry tag ``i``:

   - ``"uniform"``: uniformly among the valid candidates;
   - ``"weighted"``: with probability ∝ (cos(tag_i, track_j) + 1) / 2, so harder negatives (closer to the
     tag) are likelier -- the paper's "balanced-weighted" setting when combined with the balanced sampler.

Every random draw goes through a ``torch.Generator`` passed in by the caller (no global random state), and
nothing loops over batch rows in Python.

Example:
    >>> import torch
    >>> labels = torch.tensor([[1, 0], [0, 1], [1, 1], [0, 1]], dtype=torch.bool)
    >>> generator = torch.Generator().manual_seed(0)
    >>> tags, positives = BalancedSampler(labels).sample(8, generator)
    >>> triplets = mine_negatives(tags, positives, labels, generator=generator)
    >>> bool(labels[triplets.negatives_tracks(positives), tags[triplets.anchors]].any())
    False
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np
import torch

from retrieval.errors import ConfigError

#: Floor on the sampling weight of a valid negative in weighted mining. (cos + 1) / 2 is 0 at cos = -1;
#: the floor keeps every valid candidate drawable and ``torch.multinomial`` away from all-zero rows.
MIN_NEGATIVE_WEIGHT = 1e-6


class Triplets(NamedTuple):
    """Indices of the (anchor, positive, negative) triplets of one batch.

    Every field has shape ``(T,)`` with ``T`` ≤ batch size (rows without a valid negative are dropped).

    Attributes:
        anchors: row index into the tag-embedding batch (also the batch row the triplet came from).
        positives: row index into the track-embedding batch.
        negatives: row index into the track-embedding batch.
    """

    anchors: torch.Tensor
    positives: torch.Tensor
    negatives: torch.Tensor

    def n_dropped(self, batch_size: int) -> int:
        """Number of batch rows that yielded no triplet (``batch_size - T``)."""
        return batch_size - int(self.anchors.numel())

    def negatives_tracks(self, positives: torch.Tensor) -> torch.Tensor:
        """Dataset row of each negative track, given the batch's ``positives`` from the sampler.

        Args:
            positives: ``(B,)`` dataset row of each batch track, as returned by ``Sampler.sample``.

        Returns:
            ``(T,)`` dataset rows of the negative tracks.
        """
        return positives[self.negatives]


def as_label_matrix(labels: torch.Tensor | np.ndarray | object) -> torch.Tensor:
    """Convert a multi-hot label matrix to a dense ``torch.bool`` tensor.

    Args:
        labels: ``(n_tracks, n_tags)`` multi-hot labels: a torch tensor or numpy array (any dtype; non-zero
            means "carries the tag") or a scipy sparse matrix (e.g. csr).

    Returns:
        ``(n_tracks, n_tags)`` bool tensor (on the input's device for torch input, else on CPU).

    Raises:
        ValueError: if ``labels`` is not two-dimensional.
    """
    if hasattr(labels, "toarray"):  # scipy.sparse: dense bool is small enough (160k × 500 = 80 MB)
        labels = labels.toarray()
    tensor = torch.as_tensor(labels)
    if tensor.ndim != 2:
        raise ValueError(
            f"labels must be a 2-D (n_tracks, n_tags) multi-hot matrix, got shape {tuple(tensor.shape)}"
        )
    return tensor if tensor.dtype == torch.bool else tensor != 0


class _Groups:
    """Ragged lists of members per owner, for O(1) uniform draws of one member of each owner.

    Built from a bool matrix ``owned`` of shape ``(n_owners, n_members)``: the members of owner ``o`` are
    ``members[start[o] : start[o] + count[o]]`` (CSR layout).
    """

    def __init__(self, owned: torch.Tensor):
        owner_ids, member_ids = owned.nonzero(as_tuple=True)  # row-major: grouped by owner
        self.members = member_ids
        self.count = owned.sum(dim=1)
        self.start = torch.cumsum(self.count, dim=0) - self.count

    def draw(self, owners: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One uniformly random member of each owner in ``owners`` (each must have ≥ 1 member)."""
        count = self.count[owners]
        # float64 keeps floor(u · count) uniform to ~1e-11 even for owners with 10^5 members.
        u = torch.rand(owners.shape, generator=generator, dtype=torch.float64, device=owners.device)
        offset = torch.minimum((u * count).long(), count - 1)
        return self.members[self.start[owners] + offset]


def _uniform_choice(pool: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """``size`` draws with replacement from the 1-D ``pool``."""
    picks = torch.randint(len(pool), (size,), generator=generator, device=pool.device)
    return pool[picks]


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")


class Sampler(Protocol):
    """What the training loop needs from a sampler."""

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]: ...


class RandomSampler:
    """Random sampling: a random labelled track, then one of its tags uniformly.

    Tracks without any tag are never drawn. Tag ``j`` is drawn with probability
    ``Σ_{t carries j} 1 / (n_labelled · |tags(t)|)``, roughly proportional to how many tracks carry it.

    Args:
        labels: ``(n_tracks, n_tags)`` multi-hot training labels (bool tensor, numpy array or scipy sparse).

    Attributes:
        labels: the labels as a dense bool tensor.
        untagged_tracks: ``(n,)`` rows of tracks with no tag (never drawn).

    Raises:
        ValueError: if no track carries any tag.
    """

    def __init__(self, labels: torch.Tensor | np.ndarray | object):
        self.labels = as_label_matrix(labels)
        has_tag = self.labels.any(dim=1)
        self.untagged_tracks = (~has_tag).nonzero(as_tuple=True)[0]
        self._tracks = has_tag.nonzero(as_tuple=True)[0]
        if len(self._tracks) == 0:
            raise ValueError("no track carries any tag: the label matrix is empty, check the training split")
        self._tags_of_track = _Groups(self.labels)

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``batch_size`` (tag, positive track) pairs.

        Args:
            batch_size: number of pairs ``B``.
            generator: the seeded source of randomness (on the labels' device).

        Returns:
            ``(tags, positives)``, each a ``(B,)`` LongTensor; ``labels[positives[i], tags[i]]`` is True.
        """
        _check_batch_size(batch_size)
        positives = _uniform_choice(self._tracks, batch_size, generator)
        tags = self._tags_of_track.draw(positives, generator)
        return tags, positives


class BalancedSampler:
    """Balanced sampling: a tag uniformly, then a random training track carrying the tag.

    Tags that no track carries are never drawn; they are listed in ``empty_tags`` so callers can report them.

    Args:
        labels: ``(n_tracks, n_tags)`` multi-hot training labels (bool tensor, numpy array or scipy sparse).

    Attributes:
        labels: the labels as a dense bool tensor.
        empty_tags: ``(n,)`` indices of tags carried by no track (never drawn).

    Raises:
        ValueError: if no tag is carried by any track.
    """

    def __init__(self, labels: torch.Tensor | np.ndarray | object):
        self.labels = as_label_matrix(labels)
        has_track = self.labels.any(dim=0)
        self.empty_tags = (~has_track).nonzero(as_tuple=True)[0]
        self._tags = has_track.nonzero(as_tuple=True)[0]
        if len(self._tags) == 0:
            raise ValueError("no tag is carried by any track: the label matrix is empty; check the split")
        self._tracks_of_tag = _Groups(self.labels.T)

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``batch_size`` (tag, positive track) pairs; see :meth:`RandomSampler.sample`."""
        _check_batch_size(batch_size)
        tags = _uniform_choice(self._tags, batch_size, generator)
        positives = self._tracks_of_tag.draw(tags, generator)
        return tags, positives


#: Sampler name (the config value) → class.
SAMPLERS: dict[str, type[RandomSampler] | type[BalancedSampler]] = {
    "random": RandomSampler,
    "balanced": BalancedSampler,
}

#: Negative-miner name (the config value) → whether negatives are weighted by similarity.
MINERS: dict[str, bool] = {
    "uniform": False,
    "weighted": True,
}


def build_sampler(name: str, labels: torch.Tensor | np.ndarray | object) -> RandomSampler | BalancedSampler:
    """Instantiate the sampler registered as ``name`` (one of :data:`SAMPLERS`).

    Raises:
        ConfigError: for an unknown name; the message lists the valid ones.
    """
    if name not in SAMPLERS:
        raise ConfigError(f"unknown sampler {name!r}; valid samplers: {', '.join(sorted(SAMPLERS))}")
    return SAMPLERS[name](labels)


def is_weighted_miner(name: str) -> bool:
    """Whether the miner registered as ``name`` (one of :data:`MINERS`) weights negatives by similarity.

    Raises:
        ConfigError: for an unknown name; the message lists the valid ones.
    """
    if name not in MINERS:
        raise ConfigError(f"unknown negative miner {name!r}; valid miners: {', '.join(sorted(MINERS))}")
    return MINERS[name]


def batch_similarity(tag_emb: torch.Tensor, track_emb: torch.Tensor) -> torch.Tensor:
    """Detached cosine similarity of every batch tag with every batch track, for weighted mining.

    Args:
        tag_emb: ``(B, D)`` tag embeddings.
        track_emb: ``(B, D)`` track embeddings.

    Returns:
        ``(B, B)`` matrix ``S[i, j] = cos(tag_emb[i], track_emb[j])`` without gradient.
    """
    with torch.no_grad():
        tags = torch.nn.functional.normalize(tag_emb.detach(), dim=1)
        tracks = torch.nn.functional.normalize(track_emb.detach(), dim=1)
        return tags @ tracks.T


def mine_negatives(
    tags: torch.Tensor,
    positives: torch.Tensor,
    labels: torch.Tensor | np.ndarray | object,
    *,
    similarity: torch.Tensor | None = None,
    weighted: bool = False,
    generator: torch.Generator,
) -> Triplets:
    """Pick one in-batch negative per row: a batch track that does not carry the row's tag.

    Row ``i`` (anchor ``tags[i]``, positive ``positives[i]``) may take as negative any batch column ``j``
    such that

    - track ``positives[j]`` does not carry tag ``tags[i]`` (so it is never the anchor tag's track), and
    - ``j`` is the first column holding its track (a track repeated in the batch counts once, so uniform
      means uniform over distinct tracks).

    The negative is drawn uniformly among valid columns, or, if ``weighted``, with probability

        P(j | i) = w_ij / Σ_{valid j'} w_ij',   w_ij = max((S_ij + 1) / 2, MIN_NEGATIVE_WEIGHT)

    where ``S = similarity`` (cosine of tag ``i`` and track ``j``, see :func:`batch_similarity`).
    Rows with no valid column are dropped; ``Triplets.n_dropped(B)`` says how many.

    Args:
        tags: ``(B,)`` tag index of each row (the anchor).
        positives: ``(B,)`` label-matrix row of each row's positive track.
        labels: ``(n_tracks, n_tags)`` multi-hot training labels; pass the sampler's ``labels`` (a bool
            tensor on the device of ``tags``) to avoid a conversion or copy per batch.
        similarity: ``(B, B)`` cosine similarities, required when ``weighted``; ignored otherwise.
            It is detached: mining never back-propagates.
        weighted: draw negatives in proportion to similarity instead of uniformly.
        generator: the seeded source of randomness (on the device of ``tags``).

    Returns:
        :class:`Triplets` with the kept rows: ``anchors`` (the row, i.e. the index into the tag batch),
        ``positives`` (the same row, in the track batch) and ``negatives`` (the chosen column).

    Raises:
        ValueError: on mismatched shapes, or ``weighted`` without ``similarity``.
    """
    labels = as_label_matrix(labels)
    if tags.ndim != 1 or tags.shape != positives.shape:
        raise ValueError(
            f"tags and positives must be 1-D and of equal length, got {tuple(tags.shape)} and "
            f"{tuple(positives.shape)}"
        )
    batch = len(tags)
    device = tags.device
    labels = labels.to(device)
    positives = positives.to(device)

    # carries[i, j]: the track in column j carries row i's tag.
    carries = labels[positives[None, :], tags[:, None]]
    same_track = positives[:, None] == positives[None, :]
    repeated = torch.tril(same_track, diagonal=-1).any(dim=1)  # column j repeats an earlier column
    valid = ~carries & ~same_track & ~repeated[None, :]

    if weighted:
        if similarity is None:
            raise ValueError("weighted mining needs the (B, B) tag-track similarity matrix")
        if similarity.shape != (batch, batch):
            raise ValueError(f"similarity must have shape ({batch}, {batch}), got {tuple(similarity.shape)}")
        weights = ((similarity.detach().to(device, torch.float64) + 1) / 2).clamp_min(MIN_NEGATIVE_WEIGHT)
    else:
        weights = torch.ones((batch, batch), dtype=torch.float64, device=device)

    rows = valid.any(dim=1).nonzero(as_tuple=True)[0]
    if len(rows) == 0:
        empty = torch.empty(0, dtype=torch.long, device=device)
        return Triplets(empty, empty, empty)
    weights = torch.where(valid[rows], weights[rows], torch.zeros((), dtype=weights.dtype, device=device))
    negatives = torch.multinomial(weights, 1, generator=generator).squeeze(1)
    return Triplets(anchors=rows, positives=rows, negatives=negatives)
