"""The tags a model was trained on: names, categories and word vectors (the word tower's input).

A run's checkpoint stores its vocabulary (:meth:`Vocabulary.to_dict`), so search and evaluation use exactly the tags
and vectors the model learned, whatever the corpus holds later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Vocabulary:
    """The tags that act as anchors, with categories and word vectors (n_tags, text_dim)."""

    tags: list[str]
    categories: list[str]
    vectors: torch.Tensor

    def to_dict(self) -> dict:
        return {"tags": list(self.tags), "categories": list(self.categories), "vectors": self.vectors}

    @classmethod
    def from_dict(cls, data: dict) -> Vocabulary:
        return cls(list(data["tags"]), list(data["categories"]), data["vectors"])

    @property
    def category_of(self) -> dict[str, str]:
        return dict(zip(self.tags, self.categories, strict=False))

    def subset(self, tags: Sequence[str]) -> Vocabulary:
        """These ``tags`` only (in the given order), with their categories and vectors.

        Raises:
            KeyError: a tag is not in the vocabulary.
        """
        row = {t: i for i, t in enumerate(self.tags)}
        rows = [row[t] for t in tags]
        return Vocabulary([self.tags[i] for i in rows], [self.categories[i] for i in rows], self.vectors[rows])


def build_vocabulary(tags: Sequence[str], categories: Sequence[str], text_encoder) -> Vocabulary:
    """Word vectors for every tag from ``text_encoder.encode`` → (n_tags, text_dim); ``text_encoder=None``
    (a tagging run, which has no word tower) gives (n_tags, 0)."""
    if text_encoder is None:
        return Vocabulary(list(tags), list(categories), torch.zeros(len(tags), 0))
    vectors = torch.from_numpy(np.asarray(text_encoder.encode(list(tags)), dtype=np.float32))
    return Vocabulary(list(tags), list(categories), vectors)
