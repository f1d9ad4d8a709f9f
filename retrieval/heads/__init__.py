"""Downstream heads over the shared space (and over any frozen features).

Modules:
    features         frozen features of a trained run's tracks: shared space, audio backbone, listening factors.
    tagger           linear probe / MLP taggers with train-set standardisation baked in; tagging metrics.
    moods            mood classification with Korzeniowski et al.'s protocol; the AllMusic-subset layout loader.
    artist_factors   artist-level features and their clustering into groups (Kim et al.'s artist group factors).
    artist_groups/   per-factor patch networks and the transfer-scheme comparison for genre classification.
"""
