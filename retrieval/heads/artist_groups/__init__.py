"""Artist-group-factor transfer to genre classification (Kim et al., WWW 2018; REFERENCE §7).

Modules (in data-flow order):
    inputs       per-track inputs: ~1-s mel patches and audio statistics from one decode; the demo corpus's
                 artists, top-genre rule, tags and listening vectors.
    networks     PatchClassifier: a narrow Short-chunk CNN trunk with one linear head per task.
    training     training on patches, track outputs (means over patches), the genre head, the scores.
    comparison   the four schemes (direct, single-task transfer, multi-task transfer, multi-task learning),
                 the config and ``run_artist_factor_comparison``.

The artist features and the clustering into groups are in :mod:`retrieval.heads.artist_factors`.
"""

from retrieval.heads.artist_groups.comparison import (
    ArtistFactorConfig,
    compare_schemes,
    load_artist_factor_config,
    run_artist_factor_comparison,
)

__all__ = ["ArtistFactorConfig", "compare_schemes", "load_artist_factor_config", "run_artist_factor_comparison"]
