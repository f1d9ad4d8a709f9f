"""Published pretrained models, read from the files their packages install (nothing is downloaded).

    tf_checkpoint   read a TensorFlow checkpoint bundle (.index SSTable + .data shard) without TensorFlow
"""
