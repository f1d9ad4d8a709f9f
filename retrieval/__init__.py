"""retrieval: multimodal metric-learning music retrieval.

Three towers map into one shared cosine space and are trained jointly with sampled triplets
(tags are anchors, tracks carrying the tag are positives, tracks without it are negatives).

The package follows the data flow::

    audio file → audio/ (decode, resample, features) → encoders/ (backbones | text | listening) → model.py
    (shared space) → embedding.py → index/ → api.py (search);  runs/ loads a trained run for all of them
    training: training/mining.py → training/losses.py → training/loop.py → runs/ (checkpoint, run folder)
    → evaluation.py → heads/ (probes, moods, artist factors)

Modules:
    audio          decode any audio file to mono float32 at the model's rate; mel front end; crops.
    data           the published formats (MSD500, Taste Profile, splits, audio locator) and the demo corpus.
    encoders       audio backbones, word towers (word2vec | sentence), listening factors (ALS).
    config         frozen dataclass configs loaded from YAML.
    devices        train.device / train.precision made concrete: device names, autocast, loss scaling, layout.
    errors         the exceptions raised for bad input.
    fileio         atomic writes (files and folders) and the pickle-free ``.npy`` reader.
    vectors        ``unit_rows``: the one row normalisation outside the model.
    paths          where demo corpora, models and indexes live (``$RETRIEVAL_HOME``).
    embedding      whole-track embedding (N equally spaced crops, fixed batch shape).
    runs           a trained run: build a model from a config, the checkpoint format, the run folder, load_run.
    training       triplet mining, the loss, the loop, step-seeded batches (DataLoader), torchrun DDP, retrieval
                   and tagging trainers, tasks, comparison tables.
    tagging        tagging-task models: whole-track prediction, robustness, attention maps.
    augment        waveform augmentation (noisy student) and the robustness perturbations.
    api            Retriever, load(), search(): what users call.
    index          vector indexes: exact (reference) and annoy, saved with the model fingerprint; index/build
                   indexes a corpus or a folder of your own audio (cached, resumable).
    heads          downstream: taggers, mood classification (AllMusic protocol), artist-group-factor transfer.
    demo           the ``make demo`` pipeline as one call: run_demo(home, config).
    configs/       the shipped YAML configs (package data; ``--config demo``, ``tagging/fcn``, ...).
    cli/           the ``retrieval`` command: thin command functions over the above.

``import retrieval`` is cheap: heavy modules are imported where they are used.

Quick use::

    import retrieval
    print(retrieval.search("dreamy"))            # the demo catalogue, after `make demo`
    r = retrieval.load("path/to/index")          # a Retriever: search, search_by_audio, similar, tag, embed_*
"""

__version__ = "0.1.0"

__all__ = ["Hit", "Retriever", "SearchResult", "load", "search"]


def __getattr__(name: str):
    # Lazy re-exports keep `import retrieval` free of torch and friends until they are needed.
    if name in ("Retriever", "SearchResult", "load", "search"):
        from retrieval import api

        return getattr(api, name)
    if name == "Hit":
        from retrieval.index.base import Hit

        return Hit
    raise AttributeError(f"module 'retrieval' has no attribute {name!r}")
