"""Training throughput of the joint model: triplets per second for each modality, on this machine.

Times full optimisation steps (sample → crops → forward → mine → loss → backward → Adam) of the model a config
builds, on synthetic inputs of the config's shapes (random log-mels and listening factors; the tag/track label
matrix is random with ~5 tags per track), so no corpus is needed and only the compute is measured.

    PYTHONPATH=. .venv/bin/python benchmarks/training_throughput.py --config configs/demo.yaml --steps 10
"""

from __future__ import annotations

import argparse
import time

import torch

from retrieval.config import load_config
from retrieval.data.assembly import ExperimentData, SplitData
from retrieval.data.vocabulary import Vocabulary
from retrieval.runs import build_model, model_args
from retrieval.training.loop import training_step
from retrieval.training.mining import SAMPLERS

N_TRACKS, N_TAGS, TAGS_PER_TRACK, TRACK_FRAMES = 512, 80, 5, 646


class _RandomMels:
    """Stands in for the mel cache: random crops of the right shape."""

    def __init__(self, n_mels: int):
        self.n_mels = n_mels

    def random_crops(self, ids, frames, generator):
        return torch.randn(len(ids), self.n_mels, frames, generator=generator)


def synthetic_data(config, generator: torch.Generator) -> ExperimentData:
    labels = torch.rand(N_TRACKS, N_TAGS, generator=generator) < TAGS_PER_TRACK / N_TAGS
    factors = config.model.listening.factors
    split = SplitData(
        ids=[f"T{i}" for i in range(N_TRACKS)],
        labels=labels,
        listening=torch.randn(N_TRACKS, factors, generator=generator),
        has_listening=torch.ones(N_TRACKS, dtype=torch.bool),
    )
    text_dim = config.model.text.vector_size if config.model.text.kind == "word2vec" else 384
    vocabulary = Vocabulary([f"tag{i}" for i in range(N_TAGS)], ["genre"] * N_TAGS, torch.randn(N_TAGS, text_dim))
    return ExperimentData(vocabulary, {"train": split}, _RandomMels(config.model.mel.n_mels),
                          config.model.audio.input_frames)


def measure(config, steps: int) -> float:
    generator = torch.Generator().manual_seed(0)
    data = synthetic_data(config, generator)
    model = build_model(model_args(config, data.vocabulary.vectors.shape[1], config.model.listening.factors))
    sampler = SAMPLERS[config.train.sampler](data.splits["train"].labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    model.train()

    def step() -> int:
        out = training_step(model, data, sampler, config.train, generator)
        optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        optimizer.step()
        return out["triplets"]

    step()  # warm-up
    started, triplets = time.perf_counter(), 0
    for _ in range(steps):
        triplets += step()
    return triplets / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--modalities", default="audio,cultural,concat,gated")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"config {args.config}; torch threads {torch.get_num_threads()}; {args.steps} timed steps\n")
    print("| modality | batch | triplets/s | steps/s |")
    print("|---|---:|---:|---:|")
    for modality in args.modalities.split(","):
        config = load_config(args.config, [f"model.modality={modality}"])
        rate = measure(config, args.steps)
        print(f"| {modality} | {config.train.batch_size} | {rate:.0f} | {rate / config.train.batch_size:.2f} |")


if __name__ == "__main__":
    main()
