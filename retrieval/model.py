"""The joint model: word, audio and listening towers mapped into one shared cosine space.

Block diagram (REFERENCE §1)::

    tag / query text ──text encoder──▶ word vector ──MLPHead──▶ t        (shared space, L2-normalised)
    audio (mel crops) ──audio backbone──────────────────────────▶ x_a
    ALS item factors ──MLPHead──────────────────────────────────▶ x_c
    score(query, track) = cos(t, x)

Modalities (``ModelConfig.modality``):

- ``audio``: x = x_a.  ``cultural``: x = x_c.
- ``concat`` (the paper's early fusion): the backbone outputs ``listening_dim`` dims, concatenated with the raw
  factors, then MLP 2·listening_dim → hidden → embed.
- ``gated`` (this library's hybrid): two spaces trained jointly — an audio space (t_a, x_a) and a cultural space
  (t_c, x_c) — and a gate g(word vector) ∈ (0, 1) that decides, per query, how much each modality is trusted:

      s(query, track) = g · cos(t_a, x_a) + (1 − g) · cos(t_c, x_c)

  Written as one dot product so that any cosine index can serve it: the track is [x_a, x_c] / √2 (unit norm) and
  the query is √2·[g·t_a, (1−g)·t_c], so ⟨query, track⟩ = s exactly. A cosine index normalises the query, which
  scales each query's scores by a positive constant and leaves its ranking of tracks unchanged. Tracks without
  listening data get x_c predicted from their audio by a cold-start head trained to match the real x_c (cosine
  regression), so every track lives in the same space.

The model normalises in one place (:meth:`JointModel.encode_text` / :meth:`JointModel.encode_tracks`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from retrieval.encoders.projection import FoldedMLP, MLPHead
from retrieval.vectors import unit_rows

_GATE_HIDDEN = 64
# F.normalize's default floor, so the numpy query path (QueryProjector) normalises exactly as encode_text does.
_NORM_EPS = 1e-12


@dataclass
class TrackInputs:
    """What a batch of tracks is made of; which fields are needed depends on the modality.

    Attributes:
        features: (B, n_mels, frames) crops of the audio tower's input features (log-mels, or waveforms with
            n_mels = 1), or (B, n_crops, n_mels, frames) for whole-track embedding.
        listening: (B, listening_dim) ALS item factors (zeros where ``has_listening`` is False).
        has_listening: (B,) bool, tracks that have listening data.
    """

    features: torch.Tensor | None = None
    listening: torch.Tensor | None = None
    has_listening: torch.Tensor | None = None


class JointModel(nn.Module):
    """Towers + projection heads into the shared space.

    Args:
        modality: "audio" | "cultural" | "concat" | "gated".
        text_dim: dimension of the word vectors fed to the word tower (300 word2vec, 384 MiniLM).
        embed_dim: shared-space dimension (256 in the paper).
        hidden_dim: MLP hidden width (512). dropout: MLP dropout (0.5).
        audio_encoder: a backbone with ``output_dim`` and ``forward_mel``; required unless modality is "cultural".
            Its ``output_dim`` must be ``embed_dim`` (audio, gated) or ``listening_dim`` (concat).
        listening_dim: ALS factor dimension (200); required unless modality is "audio".
    """

    def __init__(
        self,
        modality: str,
        text_dim: int,
        embed_dim: int = 256,
        hidden_dim: int = 512,
        dropout: float = 0.5,
        audio_encoder: nn.Module | None = None,
        listening_dim: int | None = None,
    ):
        super().__init__()
        self.modality = modality
        self.text_dim = text_dim
        self.embed_dim = embed_dim
        uses_audio = modality in ("audio", "concat", "gated")
        uses_listening = modality in ("cultural", "concat", "gated")
        if uses_audio and audio_encoder is None:
            raise ValueError(f"modality '{modality}' needs an audio encoder")
        if uses_listening and not listening_dim:
            raise ValueError(f"modality '{modality}' needs listening_dim")
        self.audio = audio_encoder if uses_audio else None
        expected_audio_dim = listening_dim if modality == "concat" else embed_dim
        if self.audio is not None and self.audio.output_dim != expected_audio_dim:
            raise ValueError(
                f"audio encoder outputs {self.audio.output_dim} dims; modality '{modality}' needs {expected_audio_dim}"
            )
        self.listening_dim = listening_dim if uses_listening else None

        def head(in_dim: int) -> MLPHead:
            return MLPHead(in_dim, embed_dim, hidden_dim=hidden_dim, dropout=dropout)

        self.word = head(text_dim)
        self.listening = head(listening_dim) if modality in ("cultural", "gated") else None
        self.fusion = head(2 * listening_dim) if modality == "concat" else None
        if modality == "gated":
            self.word_cultural = head(text_dim)
            self.gate = nn.Sequential(
                nn.Linear(text_dim, _GATE_HIDDEN), nn.ReLU(), nn.Linear(_GATE_HIDDEN, 1)
            )
            self.cold_start = head(embed_dim)

    @property
    def output_dim(self) -> int:
        """Dimension of the vectors :meth:`encode_text` and :meth:`encode_tracks` return."""
        return 2 * self.embed_dim if self.modality == "gated" else self.embed_dim

    @property
    def needs_audio(self) -> bool:
        return self.audio is not None

    @property
    def needs_listening(self) -> bool:
        return self.listening_dim is not None

    # ---- towers -------------------------------------------------------------------------------------------
    def gate_weight(self, word_vectors: torch.Tensor) -> torch.Tensor:
        """g(query) ∈ (0, 1), shape (B,): the weight of the audio space for each query (gated modality only)."""
        return torch.sigmoid(self.gate(word_vectors)).squeeze(-1)

    def text_parts(self, word_vectors: torch.Tensor) -> dict[str, torch.Tensor]:
        """Normalised query embeddings per space: {"audio"|"cultural"|"shared": (B, embed_dim)}."""
        if self.modality == "gated":
            return {
                "audio": F.normalize(self.word(word_vectors), dim=-1),
                "cultural": F.normalize(self.word_cultural(word_vectors), dim=-1),
            }
        return {"shared": F.normalize(self.word(word_vectors), dim=-1)}

    def audio_features(self, mel: torch.Tensor) -> torch.Tensor:
        """Backbone output for mel crops: (B, n_mels, frames) → (B, d), or (B, n_crops, n_mels, frames) → mean
        over crops (the paper's whole-track embedding)."""
        if mel.dim() == 4:
            batch, n_crops = mel.shape[:2]
            features = self.audio.forward_mel(mel.flatten(0, 1))
            return features.view(batch, n_crops, -1).mean(dim=1)
        return self.audio.forward_mel(mel)

    def track_parts(self, tracks: TrackInputs) -> dict[str, torch.Tensor]:
        """Normalised track embeddings per space (same keys as :meth:`text_parts`), plus for the gated model
        "cultural_target" (the real x_c where it exists, for the cold-start loss) and "has_listening"."""
        if self.modality == "audio":
            return {"shared": F.normalize(self.audio_features(tracks.features), dim=-1)}
        if self.modality == "cultural":
            return {"shared": F.normalize(self.listening(tracks.listening), dim=-1)}
        if self.modality == "concat":
            fused = torch.cat([self.audio_features(tracks.features), tracks.listening], dim=-1)
            return {"shared": F.normalize(self.fusion(fused), dim=-1)}
        x_audio = F.normalize(self.audio_features(tracks.features), dim=-1)
        # Cold start: predict the cultural embedding from audio (stop-gradient into the audio space).
        x_pred = F.normalize(self.cold_start(x_audio.detach()), dim=-1)
        if tracks.listening is None:  # no listening data at all (tracks nobody has played): all cold start
            return {"audio": x_audio, "cultural": x_pred, "cultural_predicted": x_pred, "cultural_target": x_pred,
                    "has_listening": torch.zeros(len(x_audio), dtype=torch.bool, device=x_audio.device)}
        x_real = F.normalize(self.listening(tracks.listening), dim=-1)
        has = tracks.has_listening.to(x_real.dtype).unsqueeze(-1)
        return {
            "audio": x_audio,
            "cultural": has * x_real + (1 - has) * x_pred,
            "cultural_predicted": x_pred,
            "cultural_target": x_real,
            "has_listening": tracks.has_listening,
        }

    # ---- the shared space ---------------------------------------------------------------------------------
    def encode_text(self, word_vectors: torch.Tensor) -> torch.Tensor:
        """Query vectors in the index space, (B, output_dim): ⟨query, track⟩ is the model's similarity.

        Unit norm for single-space models; for the gated model √2·[g·t_a, (1−g)·t_c], whose dot product with
        :meth:`encode_tracks` is s = g·cos_a + (1−g)·cos_c (norm √2·√(g² + (1−g)²) ≤ √2).
        """
        parts = self.text_parts(word_vectors)
        if self.modality != "gated":
            return parts["shared"]
        g = self.gate_weight(word_vectors).unsqueeze(-1)
        return math.sqrt(2.0) * torch.cat([g * parts["audio"], (1 - g) * parts["cultural"]], dim=-1)

    def query_projector(self) -> QueryProjector:
        """:meth:`encode_text` in eval mode as numpy, for a few queries at a time (a snapshot of the weights)."""
        gate = None
        if self.modality == "gated":
            first, _, second = self.gate
            gate = tuple(t.detach().to("cpu", torch.float32).numpy().copy()
                         for t in (first.weight.T, first.bias, second.weight.T, second.bias))
        return QueryProjector(self.word.folded(),
                              self.word_cultural.folded() if self.modality == "gated" else None, gate)

    def encode_tracks(self, tracks: TrackInputs) -> torch.Tensor:
        """Track vectors in the index space, (B, output_dim), unit norm."""
        parts = self.track_parts(tracks)
        if self.modality != "gated":
            return parts["shared"]
        return torch.cat([parts["audio"], parts["cultural"]], dim=-1) / math.sqrt(2.0)

    def similarities(
        self, word_vectors: torch.Tensor, track_parts: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Query × track similarity matrices (B_q, B_t) that training puts a triplet loss on.

        Args:
            word_vectors: (B_q, text_dim) query word vectors.
            track_parts: :meth:`track_parts` of the tracks (computed once by the caller, who may need it too).

        Returns:
            {"shared": cos} for single-space models; for gated {"fused": s, "audio": cos_a, "cultural": cos_c}
            where s mixes the two with the query's gate.
        """
        gate = self.gate_weight(word_vectors) if self.modality == "gated" else None
        return part_similarities(self.text_parts(word_vectors), track_parts, gate)


def part_similarities(text: dict[str, torch.Tensor], tracks: dict[str, torch.Tensor],
                      gate: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """:meth:`JointModel.similarities` from embeddings already computed (:meth:`JointModel.text_parts`,
    :meth:`JointModel.track_parts` and, for the gated model, :meth:`JointModel.gate_weight` (B_q,)), e.g. gathered
    from every process of a distributed step. No parameters: only the towers that produced the parts learn."""
    if gate is None:
        return {"shared": text["shared"] @ tracks["shared"].T}
    cos_audio = text["audio"] @ tracks["audio"].T
    cos_cultural = text["cultural"] @ tracks["cultural"].T
    g = gate.unsqueeze(-1)
    return {"fused": g * cos_audio + (1 - g) * cos_cultural, "audio": cos_audio, "cultural": cos_cultural}


@dataclass(frozen=True)
class QueryProjector:
    """:meth:`JointModel.encode_text` of an eval-mode model in numpy: the word heads as :class:`FoldedMLP` and
    the gate's two layers as arrays. For a search's one query, torch's per-layer dispatch costs ~3× the
    arithmetic (the MLP's share of a warm search 1.1 → 0.4 ms); batches go through torch. Equal to
    ``encode_text`` to float32 rounding (tested for every modality).

    Attributes:
        word: the word head (the audio space's, for the gated model).
        word_cultural: the gated model's cultural-space word head, else None.
        gate: the gated model's (W1, b1, W2, b2) of g = sigmoid(relu(x·W1 + b1)·W2 + b2), else None.
    """

    word: FoldedMLP
    word_cultural: FoldedMLP | None = None
    gate: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def __call__(self, word_vectors: np.ndarray) -> np.ndarray:
        """(B, text_dim) word vectors → (B, output_dim) float32 query vectors, as ``encode_text``."""
        x = np.asarray(word_vectors, dtype=np.float32)
        t = unit_rows(self.word(x), _NORM_EPS)
        if self.word_cultural is None:
            return t.astype(np.float32)
        w1, b1, w2, b2 = self.gate
        g = 1.0 / (1.0 + np.exp(-(np.maximum(x @ w1 + b1, 0.0) @ w2 + b2)))  # (B, 1)
        cultural = unit_rows(self.word_cultural(x), _NORM_EPS)
        return (np.float32(math.sqrt(2.0)) * np.concatenate([g * t, (1 - g) * cultural], axis=1)).astype(np.float32)
