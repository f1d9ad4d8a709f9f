"""Batches depend on their step number alone: data-loader workers and resumes cannot change a draw; shards of a
global batch are disjoint and cover it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from retrieval.config import load_config
from retrieval.data.assembly import prepare_data
from retrieval.errors import ConfigError
from retrieval.training.batches import RetrievalBatches, Shard, batch_stream, step_seed
from retrieval.training.mining import SAMPLERS


@pytest.fixture(scope="module")
def data(tiny_corpus: Path, tiny_config_path: Path):
    config = load_config(tiny_config_path, [f"data.root={tiny_corpus}", "model.modality=audio",
                                            "model.text.kind=word2vec"])
    from retrieval.runs import text_encoder_for

    encoder = text_encoder_for(config, None)
    return prepare_data(config, text_encoder=encoder, progress=False, need_listening=False)[0]


def test_step_seeds_differ_by_step_stream_and_shard() -> None:
    seeds = {step_seed(0, t, s, r) for t in range(50) for s in ("batch", "mine", "dropout") for r in range(2)}
    assert len(seeds) == 300 and all(0 <= s < 2**63 for s in seeds)
    assert step_seed(0, 7, "batch") == step_seed(0, 7, "batch") != step_seed(1, 7, "batch")


def test_a_batch_is_the_same_whoever_reads_it_and_shards_split_it(data) -> None:
    sampler = SAMPLERS["balanced"](data.splits["train"].labels)
    whole = RetrievalBatches(data, sampler, 8, seed=0)
    # in this process, in 2 worker processes, out of order: the same tensors
    inline = list(batch_stream(whole, 3, 7))
    workers = list(batch_stream(whole, 3, 7, workers=2))
    assert [b["step"] for b in workers] == [3, 4, 5, 6]
    for a, b in zip(inline, workers, strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a if k != "step")
    assert torch.equal(whole(5)["features"], inline[2]["features"])
    assert not torch.equal(whole(5)["features"], whole(6)["features"])
    # 2 ranks: the same global plan, each reads its own half of the rows
    halves = [RetrievalBatches(data, sampler, 8, seed=0, shard=Shard(rank, 2))(5) for rank in range(2)]
    assert all(torch.equal(h["positives"], inline[2]["positives"]) for h in halves)
    assert torch.equal(torch.cat([h["features"] for h in halves]), inline[2]["features"])
    with pytest.raises(ConfigError, match="train.batch_size: 8 rows do not split evenly over 3 processes"):
        RetrievalBatches(data, sampler, 8, seed=0, shard=Shard(0, 3))


@pytest.mark.slow
def test_data_loader_workers_do_not_change_the_trained_weights(tmp_path, tiny_corpus, tiny_config_path) -> None:
    from retrieval.runs.checkpoint import load_checkpoint
    from retrieval.training.experiment import train_run

    weights = []
    for workers in (0, 2):
        config = load_config(tiny_config_path, [f"data.root={tiny_corpus}", "model.modality=audio",
                                                "train.epochs=1", f"train.workers={workers}"])
        train_run(config, tmp_path / str(workers), progress=False)
        weights.append(load_checkpoint(tmp_path / str(workers) / "checkpoints" / "last.ckpt")["model"])
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
