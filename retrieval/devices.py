"""Where and in what precision a model runs: ``train.device`` and ``train.precision`` made concrete.

- :func:`resolve_device`: ``auto | cpu | cuda | cuda:N | mps`` → a :class:`torch.device` that exists here
  (``auto``: the first CUDA device, else Apple's MPS, else the CPU), or a :class:`ConfigError` that says what
  this machine has.
- :func:`autocast`: the forward passes' context: nothing for ``fp32``; :func:`torch.autocast` to bfloat16 /
  float16 otherwise (matmuls and convolutions in the low precision, reductions and the loss in float32).
- :func:`grad_scaler`: a :class:`torch.amp.GradScaler` for ``fp16`` on CUDA (float16 gradients underflow
  without loss scaling); disabled — a pass-through — everywhere else (bfloat16 has float32's range).
- :func:`cpu_has_bf16`: whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX), the only CPUs on
  which bf16 autocast and a channels-last audio tower are faster than fp32 (measured in
  ``benchmarks/training_throughput.py``; on AVX2-only CPUs bf16 is emulated and slower).

Example:
    >>> device = resolve_device("cpu")
    >>> with autocast(device, "fp32"):
    ...     pass
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import torch

from retrieval.errors import ConfigError

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
#: /proc/cpuinfo flags of native bfloat16 arithmetic (AVX-512 BF16 dot products, AMX tiles).
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def resolve_device(name: str | torch.device = "auto", key: str = "train.device") -> torch.device:
    """The device ``name`` means on this machine.

    Args:
        name: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (or a :class:`torch.device`).
        key: the config key or option named in the error.

    Raises:
        ConfigError: an unknown name, or a device this machine does not have (the message lists what it has).
    """
    if isinstance(name, torch.device):
        return name
    text = str(name).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"{key}: {name!r} is not a device; choose auto, cpu, cuda, cuda:N or mps")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index is not None and device.index >= count):
            raise ConfigError(f"{key}: {name!r} is not on this machine ({available()}); set {key}=auto or cpu")
        return device if device.index is not None else torch.device("cuda", torch.cuda.current_device())
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{key}: 'mps' is not on this machine ({available()}); set {key}=auto or cpu")
    return device


def available() -> str:
    """The devices this machine offers, in words (for error messages)."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        found.append("mps")
    return "it has " + ", ".join(found)


def check_precision(precision: str, key: str = "train.precision") -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a :class:`ConfigError` naming ``key``."""
    if precision not in DTYPES:
        raise ConfigError(f"{key}: {precision!r} is not a precision; choose one of: {', '.join(PRECISIONS)}")
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The context of a forward pass in ``precision`` on ``device`` (a no-op for ``fp32``)."""
    if check_precision(precision) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[precision])


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """Loss scaling for ``fp16`` on CUDA; a disabled scaler (``scale`` and ``step`` pass through) otherwise."""
    enabled = precision == "fp16" and device.type == "cuda"
    return torch.amp.GradScaler(device.type if enabled else "cpu", enabled=enabled)


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's first parameter or buffer (the CPU for a model with neither)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def inference(model: torch.nn.Module, precision: str = "fp32") -> Iterator[torch.device]:
    """``torch.no_grad`` plus :func:`autocast` on the model's device; yields that device."""
    device = model_device(model)
    with torch.no_grad(), autocast(device, precision):
        yield device


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none: not Linux)."""
    try:
        return frozenset(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return frozenset()


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (:data:`BF16_CPU_FLAGS` in ``/proc/cpuinfo``)."""
    return bool(cpu_flags() & BF16_CPU_FLAGS)


def place_model(model: torch.nn.Module, device: torch.device, config) -> torch.nn.Module:
    """``model`` on ``device``, its convolutions' weights channels-last (NHWC) where :func:`use_channels_last`
    says so (``config``: a :class:`~retrieval.config.TrainConfig`; only 4-d weights change layout)."""
    model = model.to(device)
    if use_channels_last(device, config):
        model = model.to(memory_format=torch.channels_last)
    return model


def use_channels_last(device: torch.device, config) -> bool:
    """``train.channels_last``, or when null: on CUDA, and for bf16 on CPUs with native bfloat16."""
    if config.channels_last is not None:
        return config.channels_last
    return device.type == "cuda" or (device.type == "cpu" and config.precision == "bf16" and cpu_has_bf16())
