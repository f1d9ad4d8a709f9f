"""Tagging backbones of the seed papers (SMC 2020, ISMIR 2021, ML4MD 2019), each a :class:`MelBackbone`.

Modules:
    cnn         FCN, Musicnn, CRNN, Harmonic CNN (Won et al., SMC 2020 benchmark settings).
    attention   self-attention tagger (CNNSA), Music Tagging Transformer, SpecTNT.

Work in progress (issue 6): these are not yet in :data:`retrieval.encoders.audio.AUDIO_BACKBONES`.
"""
