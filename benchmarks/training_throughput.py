"""Training throughput of the joint model: triplets per second, on this machine, in one interleaved run.

Times full optimisation steps (plan → crops → forward → gather → mine → loss → backward → Adam) exactly as
``retrieval train`` runs them (:func:`retrieval.training.loop.training_step` under the loop's autocast), on
synthetic inputs of the config's shapes (random log-mels and listening factors; the tag/track label matrix is
random with ~5 tags per track), so no corpus is needed and only the compute is measured.

Two tables:

- ``--modalities``: fp32 triplets/s of each modality of ``--config``;
- ``--precisions``: the audio tower of each ``--towers`` config (default: the demo's and the paper-size MSD500
  one) in fp32, bf16 autocast, channels-last and both, **interleaved**: every round times ``--steps`` steps of
  each variant in turn, so load on the machine hits them alike. The median round is reported, and the cosine
  between the bf16 and fp32 embeddings of the same weights (≥ 0.999 is required, tests/test_devices.py).

    PYTHONPATH=. .venv/bin/python benchmarks/training_throughput.py                  # ≈ 8 minutes on 2 cores
    PYTHONPATH=. .venv/bin/python benchmarks/training_throughput.py --smoke          # make test: seconds
"""

from __future__ import annotations

import argparse
import os
import statistics
import zlib
from dataclasses import replace

import torch

from retrieval.config import Config, load_config
from retrieval.data.assembly import ExperimentData, SplitData, audio_input
from retrieval.data.vocabulary import Vocabulary
from retrieval.devices import autocast, cpu_has_bf16, place_model, resolve_device
from retrieval.model import TrackInputs
from retrieval.runs import TrainState, build_model, model_args
from retrieval.training.batches import RetrievalBatches, batch_stream, to_device
from retrieval.training.loop import TripletForward, train, training_step
from retrieval.training.mining import SAMPLERS

N_TRACKS, N_TAGS, TAGS_PER_TRACK = 512, 80, 5
#: name → (precision, channels_last)
VARIANTS = {"fp32": ("fp32", False), "bf16": ("bf16", False), "fp32 + channels-last": ("fp32", True),
            "bf16 + channels-last": ("bf16", True)}


class _RandomMels:
    """Stands in for the mel cache: random crops of the right shape (picklable, for data-loader workers)."""

    def __init__(self, n_mels: int):
        self.n_mels = n_mels

    def crops_at(self, ids, frames, fractions):
        generator = torch.Generator().manual_seed(zlib.crc32(ids[0].encode()) if ids else 0)
        return torch.randn(len(ids), self.n_mels, frames, generator=generator)


def synthetic_data(config: Config, generator: torch.Generator) -> ExperimentData:
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
    settings = audio_input(config)
    return ExperimentData(vocabulary, {"train": split}, _RandomMels(settings.mel.n_mels), settings.input_frames)


class Trainer:
    """One model of ``config`` on ``config.train.device`` in its precision and layout, stepping on synthetic data
    through the real loop (:func:`retrieval.training.loop.train`: autocast, loss scaling, the data loader)."""

    def __init__(self, config: Config):
        generator = torch.Generator().manual_seed(0)
        self.config = config
        self.device = resolve_device(config.train.device)
        self.data = synthetic_data(config, generator)
        torch.manual_seed(0)
        model = build_model(model_args(config, self.data.vocabulary.vectors.shape[1], config.model.listening.factors))
        self.model = place_model(model, self.device, config.train)
        self.forward = TripletForward(self.model)
        self.vectors = self.data.vocabulary.vectors.to(self.device)
        sampler = SAMPLERS[config.train.sampler](self.data.splits["train"].labels)
        self.batches = batch_stream(RetrievalBatches(self.data, sampler, config.train.batch_size, config.train.seed),
                                    0, 10**9, workers=config.train.workers, pin_memory=self.device.type == "cuda")
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.train.lr)

    def _step(self) -> dict:
        return training_step(self.forward, to_device(next(self.batches), self.device), self.vectors,
                             self.data.splits["train"].labels, self.config.train)

    def rate(self, steps: int) -> float:
        """Triplets per second over ``steps`` steps (one "epoch" of the training loop)."""
        settings = replace(self.config.train, epochs=1, steps=steps, eval_every=10**6)
        state = train(self.model, self._step, self.optimizer, settings, lambda _: 0.0,
                      lambda *_: None, TrainState(), progress=False)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return state.history[-1]["triplets_per_s"]

    @torch.no_grad()
    def embed(self, crops: torch.Tensor, precision: str) -> torch.Tensor:
        self.model.eval()
        with autocast(self.device, precision):
            return self.model.encode_tracks(TrackInputs(features=crops.to(self.device))).float().cpu()


def variant(config: Config, precision: str, channels_last: bool | None, device: str = "cpu") -> Config:
    """``config`` trained on ``device`` in ``precision`` (``channels_last`` None: the library's choice)."""
    return replace(config, train=replace(config.train, precision=precision, channels_last=channels_last,
                                         device=device))


def modality_table(config_path: str, modalities: list[str], steps: int, batch: int | None) -> None:
    print("| modality | batch | triplets/s | steps/s |")
    print("|---|---:|---:|---:|")
    for modality in modalities:
        config = load_config(config_path, [f"model.modality={modality}", "train.device=cpu",
                                           *([f"train.batch_size={batch}"] if batch else [])])
        trainer = Trainer(config)
        trainer.rate(1)  # warm-up
        rate = trainer.rate(steps)
        print(f"| {modality} | {config.train.batch_size} | {rate:.1f} | {rate / config.train.batch_size:.2f} |")


def precision_table(towers: list[str], steps: int, rounds: int, batch: int | None) -> None:
    print("| audio tower | batch | variant | triplets/s | × fp32 | cosine to fp32 (min) |")
    print("|---|---:|---|---:|---:|---:|")
    for tower in towers:
        base = load_config(tower, ["model.modality=audio", *([f"train.batch_size={batch}"] if batch else [])])
        trainers = {name: Trainer(variant(base, *v)) for name, v in VARIANTS.items()}
        reference = trainers["fp32"]
        for trainer in trainers.values():  # the same starting weights everywhere
            trainer.model.load_state_dict(reference.model.state_dict())
            trainer.rate(1)  # warm-up (first-call allocations, oneDNN kernel choice)
        rates: dict[str, list[float]] = {name: [] for name in trainers}
        for _ in range(rounds):
            for name, trainer in trainers.items():
                rates[name].append(trainer.rate(steps))
        # embeddings of one model, fp32 vs each variant's precision (after the same warm-up step everywhere)
        settings = audio_input(base)
        crops = torch.randn(8, settings.mel.n_mels, settings.input_frames, generator=torch.Generator().manual_seed(1))
        exact = reference.embed(crops, "fp32")
        fp32 = statistics.median(rates["fp32"])
        for name, trainer in trainers.items():
            trainer.model.load_state_dict(reference.model.state_dict())
            cosine = torch.nn.functional.cosine_similarity(trainer.embed(crops, trainer.config.train.precision),
                                                           exact).min().item()
            rate = statistics.median(rates[name])
            print(f"| {tower} | {base.train.batch_size} | {name} | {rate:.1f} | {rate / fp32:.2f} | {cosine:.6f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="demo", help="config of the modality table")
    parser.add_argument("--modalities", default="audio,cultural,concat,gated")
    parser.add_argument("--towers", default="demo,msd500/audio_word2vec",
                        help="configs whose audio tower the precision table times")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the precision table")
    parser.add_argument("--batch", type=int, default=16,
                        help="global batch (triplets/s barely depends on it; the paper's 128 takes ~20 s a step here)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--smoke", action="store_true", help="tiny config, 1 step, 1 round (make test)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.config, args.towers, args.steps, args.rounds, args.batch = "demo/tiny", "demo/tiny", 1, 1, 8
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()
    print(f"torch {torch.__version__}; threads {torch.get_num_threads()}; native bf16 CPU "
          f"(avx512_bf16/amx_bf16): {cpu_has_bf16()}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    modalities = [m for m in args.modalities.split(",") if m]
    if modalities:  # --modalities "" skips the table
        modality_table(args.config, modalities, args.steps, args.batch)
        print()
    precision_table([t for t in args.towers.split(",") if t], args.steps, args.rounds, args.batch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
