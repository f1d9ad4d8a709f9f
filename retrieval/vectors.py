"""Row normalisation, the one place the library scales vectors to unit length outside the model.

``unit_rows(x, eps) = x / max(‖x‖₂, eps)`` along the last axis: the cosine of two unit rows is their dot product.
Each caller passes its own ``eps`` (the floor that keeps an all-zero row at zero instead of dividing by zero), so
every result is bit-identical to the division it replaces. The model normalises its own outputs in torch
(:mod:`retrieval.model`); the index's strict variant, which refuses zero rows, is
:func:`retrieval.index.base.l2_normalise`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["unit_rows"]


def unit_rows(x: np.ndarray, eps: float) -> np.ndarray:
    """Rows of ``x`` divided by their L2 norm, floored at ``eps`` (all-zero rows stay zero).

    Args:
        x: ``(..., d)`` array; normalised along the last axis.
        eps: smallest norm divided by, e.g. ``1e-12`` or ``np.finfo(x.dtype).tiny``.

    Returns:
        ``(..., d)`` array ``x / max(‖x‖, eps)``, in the dtype numpy gives for ``x`` divided by its norms.

    Example:
        >>> unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]]), 1e-12)
        array([[0.6, 0.8],
               [0. , 0. ]])
    """
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)
