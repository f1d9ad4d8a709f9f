"""The published musicnn checkpoints: read without TensorFlow, converted exactly (against TensorFlow's recorded
outputs), and damaged files refused with their names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from retrieval.errors import DataError
from retrieval.pretrained.musicnn import CHECKPOINTS, convert_checkpoint, musicnn_package_dir
from retrieval.pretrained.tf_checkpoint import read_checkpoint

REFERENCE = json.loads((Path(__file__).parent / "musicnn_tf_reference.json").read_text())


def test_the_reader_finds_every_variable_with_its_shape() -> None:
    tensors = read_checkpoint(musicnn_package_dir() / "MTT_musicnn")
    model = {name: value for name, value in tensors.items() if "Adam" not in name and "_power" not in name}
    assert len(tensors) == 150 and len(model) == 64
    assert tensors["conv2d/kernel"].shape == (7, 38, 1, 204) and tensors["conv2d_2/kernel"].shape == (128, 1, 1, 51)
    assert tensors["dense/kernel"].shape == (1506, 200) and tensors["dense_1/bias"].shape == (50,)
    assert all(value.dtype == np.float32 and np.isfinite(value).all() for value in tensors.values())
    assert (tensors["batch_normalization_9/moving_variance"] > 0).all()  # real statistics, not zeros
    assert sum(value.size for value in model.values()) == 792_079


@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_converted_models_give_tensorflows_outputs(name: str) -> None:
    patches = np.random.default_rng(123).uniform(0, 4, size=(2, 96, 187)).astype(np.float32)
    with torch.no_grad():
        logits, penultimate = convert_checkpoint(name)(torch.from_numpy(patches))
    np.testing.assert_allclose(logits.numpy(), REFERENCE[name]["logits"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(penultimate.numpy()[:, :16], REFERENCE[name]["penultimate"], atol=1e-4, rtol=0)


def test_damaged_checkpoints_are_refused_with_the_file_named(tmp_path: Path) -> None:
    folder = tmp_path / "MTT_musicnn"
    shutil.copytree(musicnn_package_dir() / "MTT_musicnn", folder)
    data, index = folder / ".data-00000-of-00001", folder / ".index"
    data.write_bytes(data.read_bytes()[:1000])
    with pytest.raises(DataError, match="truncated or damaged") as error:
        read_checkpoint(folder)
    assert str(data) in str(error.value)
    index.write_bytes(index.read_bytes()[:-10])
    with pytest.raises(DataError, match="not a TensorFlow checkpoint index") as error:
        read_checkpoint(folder)
    assert str(index) in str(error.value)
    with pytest.raises(DataError, match="cannot read"):
        read_checkpoint(tmp_path / "nothing")
    with pytest.raises(KeyError, match="MTT_musicnn"):
        convert_checkpoint("MTT_musicnn_big")
