"""Which parts of a track drive each tag: gradient-weighted attention of the attention taggers (REFERENCE §6).

Won, Chun & Serra (2019) show the [CLS] attention over time as a heat map under the spectrogram. Raw attention
is the same for every tag, so this module weights it by each tag's gradient (Chefer, Gur & Wolf 2021, "Generic
attention-model explainability")::

    features (n_mels, frames) ─cut─▶ crops (n_crops, n_mels, input_frames), the last one zero-padded
        ─model─▶ attention A_l (n_crops, heads, T'+1, T'+1) per layer, logits (n_crops, n_tags)
        ─per tag─▶ Ā_l = mean_heads relu(∂logit_tag/∂A_l ⊙ A_l)
        ─rollout─▶ R = I;  R ← R + Ā_l · R  for l = 1 … layers;  relevance = R[0, 1:]       (n_crops, T')
        ─tokens to frames, crops joined─▶ (n_tags, frames), divided by each tag's maximum

Layers are combined by Chefer's rollout with identity rather than by the last layer alone because the
residual connections carry each token's own content through every layer (the identity term) while earlier
layers already mixed time (the product): with two or more layers, the last layer's [CLS] row alone would
credit tokens that merely relay earlier frames. Ā is not row-normalised as in Abnar & Zuidema's rollout: it is a
relevance, not a distribution, and a tag with no positive gradient must get zero relevance, not the identity's.

For SpecTNT only the temporal attention (one layer per block) is used; the spectral attention mixes frequency
inside a frame and moves nothing in time.

``nn.MultiheadAttention`` returns its weights as a view that the output is *not* computed from, so they are
outside the autograd graph. :func:`tag_attention` therefore records each temporal attention module's weights
with a forward hook that recomputes the module's output from them (``out_proj(A · V)``, identical in eval mode),
which puts them on the path to the logits.

:func:`explain` does it for an audio file and a trained tagging run and writes heat-map PNGs.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from retrieval.encoders.backbones.attention import CNNSA, MusicTaggingTransformer, SpecTNT
from retrieval.errors import InputError
from retrieval.fileio import atomic_path
from retrieval.tagging.model import TaggingModel

__all__ = ["Explanation", "explain", "tag_attention"]

#: Backbones with attention over time, i.e. those :func:`tag_attention` explains.
ATTENTION_BACKBONES = (CNNSA, MusicTaggingTransformer, SpecTNT)
#: Crops run through the model (with gradients) at a time.
CROPS_PER_BATCH = 16
#: Suggestions listed for an unknown tag name.
SUGGESTIONS = 5
MEL_CMAP = "magma"
RELEVANCE_CMAP = "inferno"
FIGURE_WIDTH_IN = 10.0
FIGURE_DPI = 100


def _temporal_attentions(model: TaggingModel) -> list[nn.MultiheadAttention]:
    """The attention modules that mix time tokens, in forward order.

    Raises:
        ValueError: the backbone has no attention over time (names it and the attention backbones).
    """
    backbone = model.backbone
    if isinstance(backbone, SpecTNT):
        return [block.temporal.attention for block in backbone.tnt_blocks]
    if isinstance(backbone, (CNNSA, MusicTaggingTransformer)):
        return [layer.attention for layer in backbone.encoder.layers]
    raise InputError(f"backbone {backbone.name or type(backbone).__name__!r} has no attention over time; "
                     f"attention heat maps need one of {[cls.name for cls in ATTENTION_BACKBONES]}")


def _time_stride(model: TaggingModel) -> int:
    """Mel frames per time token: the product of the conv blocks' (ceil-mode) time pools."""
    return math.prod(pool[1] for pool in model.backbone.pools)


def _output_from_weights(module: nn.MultiheadAttention, value: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Recompute a batch-first self-attention's output from its weights: ``out_proj(concat_h(A_h · V_h))``.

    Args:
        module: the attention (packed in-projection, no bias_k / bias_v, no zero attention).
        value: its value input (B, S, D).
        weights: its per-head weights (B, heads, L, S).

    Returns:
        (B, L, D), equal to the module's own output in eval mode (no attention dropout).
    """
    if not (module.batch_first and module._qkv_same_embed_dim and module.bias_k is None
            and not module.add_zero_attn and weights.dim() == 4):
        raise ValueError("attention explanation supports batch-first nn.MultiheadAttention with per-head weights, "
                         "one packed in-projection and no bias_k / bias_v / zero attention")
    batch, length, width = value.shape
    heads = module.num_heads
    bias = None if module.in_proj_bias is None else module.in_proj_bias[2 * width:]
    v = F.linear(value, module.in_proj_weight[2 * width:], bias)  # (B, S, D)
    v = v.view(batch, length, heads, width // heads).transpose(1, 2)  # (B, heads, S, D / heads)
    out = (weights @ v).transpose(1, 2).reshape(batch, weights.shape[2], width)  # (B, L, D)
    return module.out_proj(out)


@contextlib.contextmanager
def _recording(modules: Sequence[nn.MultiheadAttention]) -> Iterator[list[torch.Tensor]]:
    """While active, every forward of ``modules`` appends its weights (B, heads, L, S) to the yielded list and
    computes its output from them, so gradients reach the weights (see the module docstring)."""
    maps: list[torch.Tensor] = []

    def hook(module: nn.MultiheadAttention, args: tuple, kwargs: dict,
             output: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        value = args[2] if len(args) > 2 else kwargs["value"]
        weights = output[1]
        maps.append(weights)
        return _output_from_weights(module, value, weights), weights

    handles = [module.register_forward_hook(hook, with_kwargs=True) for module in modules]
    try:
        yield maps
    finally:
        for handle in handles:
            handle.remove()


def _rollout(maps: Sequence[torch.Tensor], grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """Chefer's rule over layers: attention maps and their gradients (B, heads, L, L) → [CLS] row (B, L − 1).

    ``Ā = mean_heads relu(grad ⊙ A)``, ``R = I``, ``R ← R + Ā · R`` per layer; returns ``R[:, 0, 1:]`` (≥ 0).
    """
    batch, _, length, _ = maps[0].shape
    relevance = torch.eye(length, dtype=maps[0].dtype, device=maps[0].device).expand(batch, length, length)
    for weights, grad in zip(maps, grads, strict=True):
        weighted = (grad * weights).clamp(min=0).mean(dim=1)  # (B, L, L)
        relevance = relevance + weighted @ relevance
    return relevance[:, 0, 1:]


def _crops(features: torch.Tensor, length: int) -> torch.Tensor:
    """Consecutive non-overlapping crops (n_mels, frames) → (⌈frames / length⌉, n_mels, length), the last one
    zero-padded at its end (as :func:`retrieval.audio.equally_spaced_crops` pads short tracks)."""
    n_crops = -(-features.shape[-1] // length)
    padded = F.pad(features, (0, n_crops * length - features.shape[-1]))
    return padded.unflatten(-1, (n_crops, length)).movedim(-2, 0)


def _check_features(model: TaggingModel, features: torch.Tensor) -> None:
    if features.dim() != 2 or features.shape[0] != model.mel.n_mels or features.shape[1] < 1:
        raise ValueError(f"features must be one track's (n_mels={model.mel.n_mels}, frames ≥ 1) log-mel, got "
                         f"{tuple(features.shape)}; compute them with retrieval.audio.features_of_file(path, "
                         "model.mel)")


def tag_attention(model: TaggingModel, features: torch.Tensor, tags: Sequence[int], *, normalise: bool = True,
                  batch_size: int = CROPS_PER_BATCH) -> torch.Tensor:
    """Per-frame relevance of each tag over a whole track (see the module docstring for the formula).

    The track is cut into consecutive non-overlapping crops of ``model.input_frames`` frames (the length the
    model was trained on); the last one is zero-padded to that length and the padding's relevance dropped.
    Token ``t`` of a crop covers frames ``[t·s, (t+1)·s)`` with ``s`` the conv blocks' time stride (the
    product of their time pools), so each token's relevance is repeated over its ``s`` frames. Relevances of
    different crops share one scale (a crop where the tag's logit is more sensitive to attention weighs more),
    and the track's row is then divided by its maximum. The model runs in eval mode (restored afterwards) on
    the device of its parameters.

    Args:
        model: a tagger with an attention backbone (CNNSA, Music Tagging Transformer, SpecTNT).
        features: one track's front-end features (n_mels, frames), e.g. ``features_of_file(path, model.mel)``.
        tags: tag indices (columns of the model's logits).
        normalise: divide each tag's row by its maximum, so it lies in [0, 1] with maximum 1 (a row that is
            all zero, i.e. no positive gradient anywhere, stays zero). ``False`` returns the raw relevance ≥ 0.
        batch_size: crops run through the model at a time (memory: activations and gradients of that many).

    Returns:
        (len(tags), frames) float32 on ``features``' device.

    Raises:
        ValueError: a backbone without attention over time, features of the wrong shape, or a tag index out of
            range.
    """
    modules = _temporal_attentions(model)
    _check_features(model, features)
    tags = [int(t) for t in tags]
    if not tags or min(tags) < 0 or max(tags) >= model.n_tags:
        raise ValueError(f"tags must be a non-empty list of indices in [0, {model.n_tags}), got {tags}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = next(model.parameters()).device
    frames = features.shape[-1]
    crops = _crops(features.to(device=device, dtype=torch.float32), model.input_frames)
    was_training = model.training
    model.eval()
    rows = []
    try:
        with torch.enable_grad():
            for start in range(0, len(crops), batch_size):
                # Input that requires grad keeps the graph (and MHA's slow path) even for a frozen model.
                batch = crops[start:start + batch_size].clone().requires_grad_(True)
                with _recording(modules) as maps:
                    logits = model.forward_features(batch)  # (B, n_tags)
                per_tag = []
                for tag in tags:  # one backward pass per tag; crops are independent in eval mode
                    grads = torch.autograd.grad(logits[:, tag].sum(), maps, retain_graph=True)
                    per_tag.append(_rollout([m.detach() for m in maps], grads))
                rows.append(torch.stack(per_tag, dim=1).detach())  # (B, n_tags, T')
    finally:
        model.train(was_training)
    tokens = torch.cat(rows)  # (n_crops, len(tags), T')
    index = (torch.arange(model.input_frames, device=device) // _time_stride(model)).clamp(max=tokens.shape[-1] - 1)
    relevance = tokens[..., index].movedim(0, 1).flatten(1)[:, :frames]  # (len(tags), frames)
    if normalise:
        peak = relevance.amax(dim=1, keepdim=True)
        relevance = torch.where(peak > 0, relevance / peak.clamp(min=torch.finfo(relevance.dtype).tiny), 0.0)
    return relevance.float().to(features.device)


# ---- files and figures --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Explanation:
    """What :func:`explain` wrote.

    Attributes:
        probabilities: explained tag → whole-track probability (mean over the crops' sigmoids), in the order
            explained (``top_k``: most probable first).
        figures: explained tag → its ``<stem>__<tag>.png``.
        overview: ``<stem>__overview.png`` (the mel and one heat-map row per tag).
    """

    probabilities: dict[str, float]
    figures: dict[str, Path]
    overview: Path

    @property
    def paths(self) -> list[Path]:
        """Every file written: the tag figures in order, then the overview."""
        return [*self.figures.values(), self.overview]

    def lines(self) -> list[str]:
        """One printable line per file: ``wrote PATH: tag p=0.83`` and ``wrote PATH: overview``."""
        return [*(f"wrote {self.figures[tag]}: {tag} p={p:.2f}" for tag, p in self.probabilities.items()),
                f"wrote {self.overview}: overview"]


def _pick_tags(vocabulary: list[str], probabilities: torch.Tensor, tags: Sequence[str] | None,
               top_k: int) -> list[int]:
    """Indices of the named tags (duplicates dropped) or of the ``top_k`` most probable ones."""
    if tags is None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        return torch.argsort(probabilities, descending=True, stable=True)[:top_k].tolist()
    if isinstance(tags, str):
        tags = [tags]
    if not tags:
        raise ValueError("tags is empty; name at least one tag or pass tags=None to explain the top_k tags")
    position = {tag: i for i, tag in enumerate(vocabulary)}
    unknown = [tag for tag in tags if tag not in position]
    if unknown:
        hints = {tag: difflib.get_close_matches(tag, vocabulary, n=SUGGESTIONS) for tag in unknown}
        said = "; ".join(f"{tag!r} (close: {close})" if close else repr(tag) for tag, close in hints.items())
        raise InputError(f"unknown tag(s) {said}; the run's {len(vocabulary)} tags include "
                         f"{vocabulary[:2 * SUGGESTIONS]}")
    return [position[tag] for tag in dict.fromkeys(tags)]


def _slug(tag: str) -> str:
    """A file-name-safe form of a tag: runs of characters other than letters, digits, '.', '-' become '_'."""
    return re.sub(r"[^\w.-]+", "_", tag).strip("_") or "tag"


def _save(figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=FIGURE_DPI)
    return path


def _mel_panel(figure, axes, mel: np.ndarray, seconds: float, scale: str) -> None:
    image = axes.imshow(mel, origin="lower", aspect="auto", cmap=MEL_CMAP, extent=(0.0, seconds, 0, mel.shape[0]),
                        interpolation="nearest")
    axes.set_ylabel("mel band")
    figure.colorbar(image, ax=axes, label=scale)


def _heat_row(axes, relevance: np.ndarray, seconds: float):
    image = axes.imshow(relevance[None], origin="lower", aspect="auto", cmap=RELEVANCE_CMAP, vmin=0.0, vmax=1.0,
                        extent=(0.0, seconds, 0, 1), interpolation="nearest")
    axes.set_yticks([])
    return image


def _plot_tag(mel: np.ndarray, relevance: np.ndarray, seconds: float, scale: str, title: str, path: Path) -> Path:
    """Mel (n_mels, frames) above one tag's relevance (frames,) on a shared time axis in seconds."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(FIGURE_WIDTH_IN, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[4, 1])
    _mel_panel(figure, top, mel, seconds, scale)
    figure.colorbar(_heat_row(bottom, relevance, seconds), ax=bottom, label="relevance")
    bottom.set_xlabel("time (s)")
    figure.suptitle(title)
    return _save(figure, path)


def _plot_overview(mel: np.ndarray, relevance: np.ndarray, labels: list[str], seconds: float, scale: str,
                   title: str, path: Path) -> Path:
    """Mel above one relevance row per tag (relevance (n_tags, frames), ``labels`` one per row)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(FIGURE_WIDTH_IN, 3.0 + 0.6 * len(labels)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1 + len(labels), 1, sharex=True, height_ratios=[4] + [1] * len(labels), squeeze=False)
    axes = axes[:, 0]
    _mel_panel(figure, axes[0], mel, seconds, scale)
    image = None
    for ax, row, label in zip(axes[1:], relevance, labels, strict=True):
        image = _heat_row(ax, row, seconds)
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
    figure.colorbar(image, ax=list(axes[1:]), label="relevance")
    axes[-1].set_xlabel("time (s)")
    figure.suptitle(title)
    return _save(figure, path)


def explain(file: str | Path, run: str | Path, out: str | Path, tags: Sequence[str] | None = None, top_k: int = 3,
            device: str | torch.device = "cpu") -> Explanation:
    """Write per-tag attention heat maps of an audio file for a trained attention tagger.

    The file's features come from the run model's own front end (:func:`retrieval.audio.features_of_file`);
    whole-track probabilities are the mean over :func:`tag_attention`'s crops of the sigmoids. Writes
    (atomically) into ``out``, created if missing, with ``stem`` the audio file's name without suffix and tags
    made file-name safe (runs of characters other than letters, digits, '.', '-' become '_'):

    - ``<stem>__<tag>.png`` per tag: the log-mel (mel band over time in seconds) above the tag's relevance
      (:func:`tag_attention`, normalised to [0, 1]), titled with the tag and its probability;
    - ``<stem>__overview.png``: the log-mel above one relevance row per tag.

    Args:
        file: an audio file (any supported format and rate).
        run: a tagging run folder (``retrieval train`` with ``task: tagging``) of an attention backbone.
        out: folder for the PNGs.
        tags: tag names to explain (in this order); ``None`` explains the ``top_k`` most probable tags.
        top_k: how many tags when ``tags`` is None (capped at the vocabulary size).
        device: where the model runs.

    Returns:
        An :class:`Explanation`: tag → probability, tag → figure, the overview; ``.lines()`` prints them.

    Raises:
        ValueError: the run's backbone has no attention over time; an unknown tag (close matches listed);
            ``top_k`` < 1. FileNotFoundError: no checkpoint in ``run``. AudioError: the file cannot be decoded.

    Example:
        >>> result = explain("song.ogg", "runs/tagging/cnnsa", "heatmaps")  # doctest: +SKIP
        >>> print("\\n".join(result.lines()))  # doctest: +SKIP
        wrote heatmaps/song__rock.png: rock p=0.83
    """
    from retrieval.audio import features_of_file
    from retrieval.runs import load_run

    loaded = load_run(run, task="tagging")
    model = loaded.model.to(device)
    _temporal_attentions(model)  # fail on a non-attention run before decoding any audio
    file = Path(file)
    mel = features_of_file(file, model.mel)  # (n_mels, frames)
    features = torch.from_numpy(mel).to(device)
    probabilities = model.predict_crops(_crops(features, model.input_frames)[None])[0].cpu()  # (n_tags,)
    vocabulary = list(loaded.vocabulary.tags)
    chosen = _pick_tags(vocabulary, probabilities, tags, top_k)
    relevance = tag_attention(model, features, chosen).cpu().numpy()  # (len(chosen), frames)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seconds = mel.shape[1] * model.mel.hop_length / model.mel.sample_rate
    scale = "dB" if model.mel.log == "db" else "log(1 + power)"
    names = [vocabulary[i] for i in chosen]
    p = {name: float(probabilities[i]) for name, i in zip(names, chosen, strict=True)}
    figures = {name: _plot_tag(mel, row, seconds, scale, f"{file.name}: {name} (p = {p[name]:.2f})",
                               out / f"{file.stem}__{_slug(name)}.png")
               for name, row in zip(names, relevance, strict=True)}
    overview = _plot_overview(mel, relevance, [f"{name}\np={p[name]:.2f}" for name in names], seconds, scale,
                              f"{file.name}: attention per tag", out / f"{file.stem}__overview.png")
    return Explanation(p, figures, overview)
