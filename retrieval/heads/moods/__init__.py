"""Mood classification from frozen embeddings: the protocol of Korzeniowski et al. (ISMIR 2020, REFERENCE §2).

Modules (in data-flow order):
    layout      the AllMusic mood subset's released layout: checked loader (MoodDataset, load_mood_dataset).
    config      MoodConfig (the MLP and its training) and its YAML loader (``configs/moods/*.yaml``).
    protocol    the MLP, train / select on validation AP / score test, on the layout or on a trained run's tags.
    miniature   a generated miniature of the layout (real file names and shapes) for tests and the notebook.

**The model and training**: train-set standardisation baked into the model (mean / std buffers), then
``n_layers`` × (Linear → ReLU → Dropout) → Linear(n_moods) (:class:`~retrieval.heads.probe.StackedMLP`); BCE;
Adam; batch 128; 100 epochs; learning rate warmed up linearly over 1 epoch then cosine-annealed to 0; the epoch
with the best validation AP is kept. Best settings (``configs/moods/``): listening 4 × 3909 units, lr 4e-4,
dropout 0.25; audio 4 × 3933 units, lr 5e-5, dropout 0.25, weight decay 1e-6.

**Metrics** on the test split (:func:`~retrieval.heads.probe.tagging_metrics`): macro AP (``pr_auc``), macro
ROC-AUC, and precision / recall / F1 of ``p ≥ 0.5`` — macro over moods and micro over all (track, mood) pairs
(the authors' release logs the micro values).
"""

from retrieval.heads.moods.config import MoodConfig, load_mood_config
from retrieval.heads.moods.layout import FEATURE_SETS, MoodDataset, load_mood_dataset
from retrieval.heads.moods.miniature import write_miniature
from retrieval.heads.moods.protocol import (
    build_mood_model,
    compare_mood_features,
    compare_run_moods,
    evaluate_moods,
    format_mood_table,
)

__all__ = [
    "FEATURE_SETS",
    "MoodConfig",
    "MoodDataset",
    "build_mood_model",
    "compare_mood_features",
    "compare_run_moods",
    "evaluate_moods",
    "format_mood_table",
    "load_mood_config",
    "load_mood_dataset",
    "write_miniature",
]
