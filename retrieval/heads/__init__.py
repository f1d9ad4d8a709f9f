"""Downstream heads over the shared space (and over any frozen features).

Modules:
    features         frozen features of a trained run's tracks: shared space, audio backbone, listening factors.
    probe/           taggers on frozen features (linear probe / MLP, standardisation baked in): networks, the
                     saved model, tagging metrics, training (``train_head`` on a run). Whole audio taggers trained
                     from audio are :mod:`retrieval.tagging`.
    moods/           mood classification with Korzeniowski et al.'s protocol: the AllMusic-subset layout loader,
                     the config, the protocol, a generated miniature of the layout.
    artist_factors   artist-level features and their clustering into groups (Kim et al.'s artist group factors).
    artist_groups/   per-factor patch networks and the transfer-scheme comparison for genre classification.
"""
