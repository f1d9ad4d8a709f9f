"""Published pretrained models, read from the files their packages install (nothing is downloaded).

    names           PRETRAINED: the retriever names (no imports: telling a name from a run folder stays cheap)
    tf_checkpoint   read a TensorFlow checkpoint bundle (.index SSTable + .data shard) without TensorFlow
    musicnn         the published musicnn and VGG networks in PyTorch, and the variable mapping that converts them
    tagger          musicnn's front end and 3-s patches; PretrainedTagger (converted weights, cached)
    retriever       retrieval.load("musicnn-mtt"): tag, index, text search over the tags, similar
"""
