"""Distributed batch embedding on Ray: ``retrieval index SOURCE --engine ray [--address ADDR]``.

The data flow::

    files to embed ──ray.data.from_items──▶ batches of (file, cache file)
        ──map_batches(_EmbedActor, actor pool: one model per actor, CPU or GPU)──▶ decode + embed
        ──▶ each batch's vectors into its cache files and one shard (shard-*.npz: files, vectors, errors)
        ──▶ the driver reads the shards and builds the index (retrieval.index.build.index_folder)

An actor runs :func:`retrieval.index.build.embed_batch`, the very code of the local engine, on batches of the
same size (every forward pass is padded to ``batch_size``, so a file's vector does not depend on its batch): the
vectors are bit for bit the local engine's when the actors run on the same kind of device with the same thread
count (Ray gives each CPU actor one thread). Every vector is also written to the per-file cache as soon as its
batch is done, so an interrupted run resumes where it stopped, with either engine.

On a multi-machine cluster the audio files, the cache folder and the output folder must be on storage every
node sees (a shared file system), as the paths are passed as they are.

Ray is the optional extra ``ray`` (``pip install 'retrieval[ray]'``); nothing else in the library imports it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from retrieval.fileio import atomic_path

__all__ = ["embed_on_ray"]

SHARD_GLOB = "shard-*.npz"


class _EmbedActor:
    """One model per actor: decodes and embeds batches of files, writes their cache files and one shard."""

    def __init__(self, model: str, batch_size: int, shards: str):
        import torch

        from retrieval.index.build import make_embedder

        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
        self.embedder = make_embedder(model, batch_size)
        run = getattr(self.embedder, "run", None)
        if run is not None and torch.cuda.is_available():  # the actor was given a GPU (num_gpus > 0)
            run.model.to("cuda")
        self.shards = Path(shards)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from retrieval.index.build import embed_batch

        pairs = [(Path(path), Path(cached)) for path, cached in zip(batch["path"], batch["cache"], strict=True)]
        vectors, skipped = embed_batch(self.embedder, pairs)
        files = [str(path) for path in vectors]
        shard = self.shards / f"shard-{uuid.uuid4().hex}.npz"
        with atomic_path(shard) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, files=np.asarray(files, dtype=str),
                     vectors=np.stack(list(vectors.values())) if vectors else np.zeros((0, 0), np.float32),
                     skipped=np.asarray(list(skipped), dtype=str),
                     reasons=np.asarray(list(skipped.values()), dtype=str))
        return {"shard": np.asarray([str(shard)] * len(pairs))}


def embed_on_ray(
    model: str | os.PathLike,
    todo: Sequence[tuple[Path, Path]],
    *,
    batch_size: int = 8,
    address: str | None = None,
    workers: int | None = None,
    gpus_per_worker: float = 0.0,
    progress: bool = True,
) -> tuple[dict[Path, np.ndarray], dict[str, str]]:
    """Embed ``todo`` (file, cache file) pairs on a Ray cluster (see the module docstring).

    Args:
        model: a trained run folder or a pretrained model's name (as for ``index_folder``).
        todo: the files to embed and their cache files.
        batch_size: files per batch (and per forward pass) of each actor.
        address: the cluster (``ray.init(address=...)``); None starts a local cluster bound to 127.0.0.1 (or
            uses the one this process already joined).
        workers: actors in the pool; None: one per CPU of the cluster (one per GPU with ``gpus_per_worker``).
        gpus_per_worker: GPUs each actor asks for (0: CPU actors).
        progress: show Ray Data's progress bars.

    Returns:
        ``(vectors by file, reasons by unreadable file)``.
    """
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, **({} if address else {"_node_ip_address": "127.0.0.1"}),
                 include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = progress
        if workers is None:
            resources = ray.cluster_resources()
            workers = int(resources.get("GPU", 0) // gpus_per_worker) if gpus_per_worker else int(resources["CPU"])
        workers = max(1, min(int(workers), -(-len(todo) // batch_size)))
        cache_root = Path(todo[0][1]).parent.parent  # <cache>/<model fingerprint>/<hash>.npy
        cache_root.mkdir(parents=True, exist_ok=True)
        shards = Path(tempfile.mkdtemp(prefix=".ray-shards-", dir=cache_root))
        try:
            items = [{"path": str(path), "cache": str(cached)} for path, cached in todo]
            dataset = ray.data.from_items(items, override_num_blocks=-(-len(items) // batch_size))
            written = dataset.map_batches(
                _EmbedActor, fn_constructor_args=(str(model), batch_size, str(shards)), batch_size=batch_size,
                concurrency=workers, num_cpus=1, num_gpus=gpus_per_worker, batch_format="numpy",
            )
            shard_files = sorted({row["shard"] for row in written.iter_rows()})
            return _read_shards(shard_files)
        finally:
            shutil.rmtree(shards, ignore_errors=True)  # the shards are read: no stale copy left behind
    finally:
        if started:
            ray.shutdown()


def _import_ray():
    """``ray`` with ``ray.data`` loaded, or an ImportError naming the extra."""
    from retrieval.index.base import import_optional

    import_optional("ray.data", "the ray engine", extra="ray")
    import ray

    return ray


def _read_shards(shard_files: Sequence[str]) -> tuple[dict[Path, np.ndarray], dict[str, str]]:
    """Vectors and unreadable files from the actors' shards."""
    vectors: dict[Path, np.ndarray] = {}
    skipped: dict[str, str] = {}
    for shard in shard_files:
        with np.load(shard, allow_pickle=False) as data:
            vectors.update(zip(map(Path, data["files"].tolist()), data["vectors"], strict=True))
            skipped.update(zip(data["skipped"].tolist(), data["reasons"].tolist(), strict=True))
    return vectors, skipped
