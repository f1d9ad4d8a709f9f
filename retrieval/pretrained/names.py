"""The published models' names: a module without imports, so that telling a run folder from a pretrained name
(``retrieval.load``, the CLI) loads neither torchaudio nor the converters."""

__all__ = ["PRETRAINED"]

#: retriever names → checkpoint folders of the musicnn package
PRETRAINED = {"musicnn-mtt": "MTT_musicnn", "musicnn-msd": "MSD_musicnn", "vgg-mtt": "MTT_vgg",
              "vgg-msd": "MSD_vgg"}
