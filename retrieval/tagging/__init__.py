"""Music tagging with the seed papers' backbones (SMC 2020, ISMIR 2021): train, evaluate, noisy student,
robustness, attention heat maps.

    model        TaggingModel: any backbone of retrieval.encoders.backbones → Dropout → Linear (one logit per tag).
    predict      whole-track tagging (N crops averaged) of a split or of files; macro ROC-AUC / PR-AUC.
    robustness   SMC 2020 robustness: tag the test split under time stretch, pitch shift, compression and noise.
    explain      per-tag attention over time of the attention backbones, as heat maps under the mel spectrogram.

Training a tagger (BCE on random crops, noisy student) is :mod:`retrieval.training.tagging`; a trained
tagger loads with ``retrieval.runs.load_run(RUN, task="tagging")``. The same backbones serve as the retrieval
model's audio tower (``model.audio.backbone`` in a retrieval config).
"""
