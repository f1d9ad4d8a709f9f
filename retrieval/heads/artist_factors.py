"""Artist group factors (Kim et al., WWW 2018; REFERENCE §7): artist-level features → K groups → track targets.

An *artist group factor* is one view of what makes artists alike. Each view gives every artist a feature
vector; k-means splits the artists into K groups; every track inherits its artist's group, and a network
learns to predict that group from short audio patches (:mod:`retrieval.heads.artist_groups`). The views
built here::

    audio      MFCC means + chroma means of each track (:class:`AudioStatistics`), averaged per artist
    tags       the artist's tag profile: fraction of its tracks carrying each tag (:func:`tag_profiles`)
    listening  collaborative-filtering (ALS) track vectors, averaged per artist (when plays exist)

Clustering (:func:`cluster_artists`): columns are standardised (z-scores over the artists the clusters are fit
on), then scikit-learn's k-means with a fixed ``random_state``; artists not used for fitting (e.g. those of
validation and test tracks) are assigned to the nearest centre, so every track gets exactly one group per
factor and nothing about held-out artists shapes the groups.

Example:
    >>> import pandas as pd
    >>> feats = pd.DataFrame([[0.0], [0.1], [5.0], [5.2]], index=["a", "b", "c", "d"])
    >>> targets = artist_group_targets(["a", "c", "d", "b"], {"audio": feats}, n_groups=2, seed=0)
    >>> targets["audio"][0] == targets["audio"][3], targets["audio"][1] == targets["audio"][2]
    (np.True_, np.True_)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torchaudio
from scipy import sparse

from retrieval.audio import MelConfig
from retrieval.errors import ConfigError

__all__ = [
    "FACTOR_NAMES",
    "PITCH_CLASSES",
    "AudioStatistics",
    "artist_group_targets",
    "artist_means",
    "chroma_filterbank",
    "cluster_artists",
    "tag_profiles",
]

#: The factors this module can build, in the order they are reported.
FACTOR_NAMES: tuple[str, ...] = ("audio", "tags", "listening")
PITCH_CLASSES = 12
#: MIDI note number of A4 and its frequency: pitch p has frequency 440 · 2^((p − 69) / 12) Hz.
A4_MIDI, A4_HZ = 69, 440.0
#: Lowest frequency counted into chroma (A1, 55 Hz): below it an FFT bin spans several semitones.
CHROMA_F_MIN_HZ = 55.0
#: Floor that keeps a silent frame's chroma normalisation finite.
CHROMA_EPS = 1e-10
DEFAULT_N_MFCC = 20
DEFAULT_CHROMA_N_FFT = 4096
DEFAULT_KMEANS_N_INIT = 10


def chroma_filterbank(n_fft: int, sample_rate: int, f_min: float = CHROMA_F_MIN_HZ) -> torch.Tensor:
    """Binary map from STFT bins to pitch classes.

    Bin ``k`` (frequency ``f_k = k · sample_rate / n_fft``) with ``f_k ≥ f_min`` belongs to pitch class
    ``round(12 · log2(f_k / 440) + 69) mod 12`` (0 = C, 9 = A); lower bins belong to none.

    Returns:
        (n_fft // 2 + 1, 12) float32 with one 1 per row at most.

    Example:
        >>> fb = chroma_filterbank(4096, 22050)
        >>> int(fb[round(440 * 4096 / 22050)].argmax())  # the bin of 440 Hz is an A
        9
    """
    freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sample_rate / n_fft
    audible = freqs >= f_min
    midi = PITCH_CLASSES * torch.log2(freqs.clamp(min=f_min) / A4_HZ) + A4_MIDI
    pitch_class = torch.round(midi).long() % PITCH_CLASSES
    bank = torch.zeros(freqs.shape[0], PITCH_CLASSES, dtype=torch.float32)
    bank[audible, pitch_class[audible]] = 1.0
    return bank


class AudioStatistics(torch.nn.Module):
    """Summary of a waveform for the audio factor: MFCC means and chroma means.

    ``[mean_t MFCC(x)[c, t] for c < n_mfcc] ++ [mean_t chroma(x)[p, t] for p < 12]``, where the MFCCs come
    from ``torchaudio.transforms.MFCC`` over the mel settings ``mel`` (DCT-II of the dB mel spectrogram) and
    ``chroma[p, t] = E_p(t) / max_q E_q(t)`` with ``E = filterbank^T · |STFT_{chroma_n_fft}|²`` (each frame
    scaled so its strongest pitch class is 1, as librosa does).

    Args:
        mel: sample rate, FFT, hop and mel bands of the MFCC front end.
        n_mfcc: cepstral coefficients kept.
        chroma_n_fft: FFT size of the chroma STFT (4096 at 22,050 Hz: 5.4 Hz bins, fine enough for semitones
            from ~55 Hz up).

    Shapes:
        ``forward``: wave ``(T,)`` float32 at ``mel.sample_rate`` → ``(n_mfcc + 12,)`` float32.
    """

    def __init__(self, mel: MelConfig, n_mfcc: int = DEFAULT_N_MFCC, chroma_n_fft: int = DEFAULT_CHROMA_N_FFT):
        super().__init__()
        if n_mfcc < 1 or n_mfcc > mel.n_mels:
            raise ConfigError(f"n_mfcc must be in [1, n_mels = {mel.n_mels}], got {n_mfcc}")
        self.n_mfcc = n_mfcc
        self.chroma_n_fft = chroma_n_fft
        self.hop_length = mel.hop_length
        self.mfcc = torchaudio.transforms.MFCC(
            sample_rate=mel.sample_rate,
            n_mfcc=n_mfcc,
            melkwargs={"n_fft": mel.n_fft, "hop_length": mel.hop_length, "n_mels": mel.n_mels,
                       "f_min": mel.f_min, "f_max": mel.f_max},
        )
        self.register_buffer("chroma_bank", chroma_filterbank(chroma_n_fft, mel.sample_rate), persistent=False)
        self.register_buffer("window", torch.hann_window(chroma_n_fft), persistent=False)

    @property
    def dim(self) -> int:
        """Length of the output vector."""
        return self.n_mfcc + PITCH_CLASSES

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        mfcc = self.mfcc(wave).mean(dim=-1)  # (n_mfcc,)
        if wave.shape[-1] < self.chroma_n_fft:  # a very short clip: zero-pad to one chroma frame
            wave = torch.nn.functional.pad(wave, (0, self.chroma_n_fft - wave.shape[-1]))
        spec = torch.stft(wave, self.chroma_n_fft, hop_length=self.hop_length, window=self.window,
                          return_complex=True).abs().square()  # (n_freq, frames)
        energy = self.chroma_bank.T @ spec  # (12, frames)
        chroma = energy / energy.amax(dim=0, keepdim=True).clamp(min=CHROMA_EPS)
        return torch.cat([mfcc, chroma.mean(dim=-1)])


def artist_means(
    track_artists: Sequence[str] | np.ndarray,
    values: np.ndarray | sparse.spmatrix,
    valid: np.ndarray | None = None,
) -> pd.DataFrame:
    """Average track rows per artist.

    ``out[a] = mean{values[i] : artist(i) = a, valid[i]}``. An artist none of whose tracks is valid gets the
    mean over all valid tracks (it then joins the group nearest the centre rather than vanishing).

    Args:
        track_artists: (n_tracks,) artist of each row.
        values: (n_tracks, d) dense or sparse.
        valid: (n_tracks,) bool, which rows have data (default: all).

    Returns:
        DataFrame (n_artists, d) float64 indexed by artist, sorted.
    """
    artists = np.asarray(track_artists).astype(str)
    dense = values.toarray() if sparse.issparse(values) else np.asarray(values)
    dense = dense.astype(np.float64)
    if dense.ndim != 2 or dense.shape[0] != artists.shape[0]:
        raise ValueError(f"values must be (n_tracks = {artists.shape[0]}, d), got {dense.shape}")
    valid = np.ones(artists.shape[0], dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if not valid.any():
        raise ValueError("no track has data (valid is all False): this factor cannot be built")
    names, inverse = np.unique(artists, return_inverse=True)
    # Sum and count per artist with one sparse (n_artists × n_tracks) product instead of a loop.
    member = sparse.csr_matrix(
        (valid.astype(np.float64), (inverse, np.arange(artists.shape[0]))), shape=(names.shape[0], artists.shape[0])
    )
    counts = np.asarray(member.sum(axis=1)).ravel()
    sums = member @ np.where(valid[:, None], dense, 0.0)
    means = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], dense[valid].mean(axis=0))
    return pd.DataFrame(means, index=pd.Index(names, name="artist"))


def tag_profiles(track_artists: Sequence[str] | np.ndarray, labels: np.ndarray | sparse.spmatrix,
                 tags: Sequence[str] | None = None) -> pd.DataFrame:
    """Artist × tag frequency: ``P[a, t]`` = fraction of artist a's tracks that carry tag t.

    Args:
        track_artists: (n_tracks,) artist of each row.
        labels: (n_tracks, n_tags) binary (dense or sparse), e.g. :meth:`retrieval.data.corpus.Corpus.labels`
            or FMA's one-hot genres.
        tags: column names (default 0 … n_tags − 1).
    """
    profiles = artist_means(track_artists, labels)
    if tags is not None:
        profiles.columns = list(tags)
    return profiles


def _standardise(features: np.ndarray, fit_rows: np.ndarray) -> np.ndarray:
    """z-scores with the mean and standard deviation of ``fit_rows`` (constant columns are only centred)."""
    mean = features[fit_rows].mean(axis=0)
    std = features[fit_rows].std(axis=0)
    return (features - mean) / np.where(std > 0, std, 1.0)


def cluster_artists(
    features: pd.DataFrame,
    n_groups: int,
    seed: int,
    fit_artists: Sequence[str] | None = None,
    n_init: int = DEFAULT_KMEANS_N_INIT,
) -> pd.Series:
    """k-means groups of artists from one factor's artist-level features.

    Args:
        features: (n_artists, d) indexed by artist (e.g. :func:`artist_means`).
        n_groups: K, the number of groups (40 in Kim et al.).
        seed: k-means ``random_state``; the same inputs and seed give the same groups.
        fit_artists: the artists the standardisation and the centres are fit on (default: all); the others
            are assigned to the nearest centre.
        n_init: k-means restarts (the best inertia wins).

    Returns:
        Series artist → group in ``[0, n_groups)`` (int64), indexed like ``features``.

    Raises:
        ConfigError: ``n_groups`` < 2 or more than the distinct fitting artists.
    """
    from sklearn.cluster import KMeans  # heavy import: only when clustering

    values = features.to_numpy(dtype=np.float64)
    fit_rows = np.ones(len(features), dtype=bool) if fit_artists is None else features.index.isin(list(fit_artists))
    n_distinct = np.unique(values[fit_rows], axis=0).shape[0]
    if not 2 <= n_groups <= n_distinct:
        raise ConfigError(
            f"n_groups = {n_groups} must be in [2, {n_distinct}] (the artists with distinct features to fit on); "
            "lower n_groups"
        )
    scaled = _standardise(values, fit_rows)
    kmeans = KMeans(n_clusters=n_groups, random_state=seed, n_init=n_init).fit(scaled[fit_rows])
    groups = kmeans.predict(scaled).astype(np.int64)
    return pd.Series(groups, index=features.index, name="group")


def artist_group_targets(
    track_artists: Sequence[str] | np.ndarray,
    factors: Mapping[str, pd.DataFrame],
    n_groups: int | Mapping[str, int],
    seed: int,
    fit_artists: Sequence[str] | None = None,
    n_init: int = DEFAULT_KMEANS_N_INIT,
) -> dict[str, np.ndarray]:
    """One artist-group target per track and factor.

    Args:
        track_artists: (n_tracks,) the artist of each track.
        factors: factor name → artist features (n_artists, d) indexed by artist; every artist of
            ``track_artists`` must have a row.
        n_groups: K for every factor, or factor → K.
        seed: k-means seed (the same for every factor).
        fit_artists: artists to fit the groups on (default all; see :func:`cluster_artists`).
        n_init: k-means restarts.

    Returns:
        factor → (n_tracks,) int64 group of each track's artist, in ``[0, K)``.

    Raises:
        KeyError: a track's artist has no row in a factor's features (the factor and artist are named).
        ConfigError: a bad K (see :func:`cluster_artists`).
    """
    artists = pd.Index(np.asarray(track_artists).astype(str))
    targets: dict[str, np.ndarray] = {}
    for name, features in factors.items():
        k = n_groups[name] if isinstance(n_groups, Mapping) else n_groups
        features = features.set_axis(features.index.astype(str))
        unknown = ~artists.isin(features.index)
        if unknown.any():
            raise KeyError(f"factor {name!r} has no features for {int(unknown.sum())} artist(s), e.g. "
                           f"{artists[unknown][0]!r}: build it from every artist's tracks")
        groups = cluster_artists(features, k, seed, fit_artists=fit_artists, n_init=n_init)
        targets[name] = groups.reindex(artists).to_numpy(dtype=np.int64)
    return targets

