"""The built-in demo corpus: public-domain scores rendered to audio, in the exact MSD500 layout.

``build_demo_corpus(out)`` renders about 2,000 short tracks from the music21 corpus, tags them in the
seven MSD500 categories, simulates a Taste Profile, writes a text corpus and artist-level splits.

Modules (in data-flow order):
    sources     the music21 collections, their documented catalogue facts, cheap header scans, parsing.
    analysis    note lists from scores; key/mode (Krumhansl–Kessler), pace and register.
    render      General MIDI synthesis (tinysoundfont) with per-track variations; OGG track files.
    tags        tag rules (catalogue metadata, render settings, audible mood/activity rules) and scores.
    listeners   the SIMULATED Taste Profile.
    text        catalogue descriptions for the domain word2vec.
    ids         MSD-style song and track ids from the seed.
    layout      file names, sizes and tag thresholds of a build.
    jobs        the track plan and parallel rendering with resume.
    tables      tags and scores, listeners, text, the unlabeled hold-out, the artist split → MSD500 tables.
    build       orchestration: cache, plan → render → tables, manifest.
"""

from retrieval.data.demo.build import GENERATOR_VERSION, DemoSummary, build_demo_corpus

__all__ = ["GENERATOR_VERSION", "DemoSummary", "build_demo_corpus"]
