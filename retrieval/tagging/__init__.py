"""Music tagging with the seed papers' backbones (SMC 2020, ISMIR 2021): train, evaluate, noisy student,
robustness, attention heat maps.

    model        TaggingModel: any backbone of retrieval.encoders.backbones → Dropout → Linear (one logit per tag).
    training     `task: tagging` runs: BCE on random crops, whole-track evaluation (N crops averaged; macro
                 ROC-AUC / PR-AUC), noisy-student training with a teacher and augmentation.
    robustness   SMC 2020 robustness: tag the test split under time stretch, pitch shift, compression and noise.
    explain      per-tag attention over time of the attention backbones, as heat maps under the mel spectrogram.

The same backbones serve as the retrieval model's audio tower (``model.audio.backbone`` in a retrieval config).
"""
