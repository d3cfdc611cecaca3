"""Local SR checkpoints through spandrel: tiny ESRGANs written here, and the named refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from isoeps import cache
from isoeps.errors import ConfigError
from isoeps.models.pretrained_sr import (
    PickledCheckpointError,
    PretrainedSR,
    SRCheckpointNotFoundError,
    SRScaleMismatchError,
    UnknownSRArchitectureError,
    load_sr_checkpoint,
)

pytest.importorskip("spandrel")


def tiny_esrgan_state(scale: int) -> dict[str, torch.Tensor]:
    """A one-block, 8-filter ESRGAN (spandrel's own definition), randomly initialised."""
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(scale)
    net = ESRGAN(num_filters=8, num_blocks=1, scale=scale)
    return {k: v.contiguous() for k, v in net.state_dict().items()}


@pytest.fixture(scope="module")
def x2_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sr") / "tiny-x2.safetensors"
    save_file(tiny_esrgan_state(2), str(path))
    return path


def test_safetensors_checkpoint_is_detected_and_runs(x2_file: Path) -> None:
    model = load_sr_checkpoint(path=x2_file)
    assert model.scale == 2 and model.provenance["architecture"] == "ESRGAN"
    assert model.provenance["sha256"] == cache.file_sha256(x2_file)
    assert model.passes_for(factor=4) == 2 and model.passes_for(factor=8) == 3
    coarse = torch.rand(4, 3, 8, 8) * 2 - 1
    out = model.upsample(coarse, factor=4, batch_size=3, device="cpu")
    assert out.shape == (4, 3, 32, 32) and out.dtype == torch.float32
    assert float(out.min()) >= -1 and float(out.max()) <= 1
    assert model.plan(factor=4)["passes"] == 2 and model.plan(factor=4)["resize"] is None


def test_gray_images_go_in_and_come_out_as_one_channel(x2_file: Path) -> None:
    model = load_sr_checkpoint(path=x2_file)
    coarse = torch.rand(3, 3, 8, 8) * 2 - 1
    coarse[:2] = coarse[:2, :1]  # two gray images (three equal channels), one colour
    out = model.upsample(coarse, factor=2, batch_size=8, device="cpu")
    spread = out.amax(dim=1) - out.amin(dim=1)
    assert float(spread[:2].max()) == 0.0 and float(spread[2].max()) > 0.0


@pytest.mark.parametrize("wrap", [False, True])
def test_pth_state_dict_loads_with_weights_only(tmp_path: Path, wrap: bool) -> None:
    state = tiny_esrgan_state(4)
    path = tmp_path / "tiny-x4.pth"
    torch.save({"params_ema": state} if wrap else state, path)
    model = load_sr_checkpoint(path=path)
    assert model.scale == 4 and model.passes_for(factor=16) == 2


class _Payload:
    """Unpickling this would write a file: what a malicious checkpoint would do."""

    marker: Path

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def test_pickled_objects_are_refused_without_running_them(tmp_path: Path) -> None:
    payload = _Payload()
    payload.marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"weights": tiny_esrgan_state(2), "extra": payload}, path)
    with pytest.raises(PickledCheckpointError, match=r"weights_only=True.*\.safetensors"):
        load_sr_checkpoint(path=path)
    assert not payload.marker.exists()


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SRCheckpointNotFoundError, match="nothere.safetensors not found"):
        load_sr_checkpoint(path=tmp_path / "nothere.safetensors")


def test_unknown_architecture_is_named(tmp_path: Path) -> None:
    path = tmp_path / "mystery.safetensors"
    save_file({"encoder.weight": torch.zeros(4, 4)}, str(path))
    with pytest.raises(UnknownSRArchitectureError, match="recognises no architecture"):
        load_sr_checkpoint(path=path)


def test_unknown_suffix_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\0")
    with pytest.raises(ConfigError, match="unknown format '.onnx'"):
        load_sr_checkpoint(path=path)


def test_wrong_scale_is_named(tmp_path: Path) -> None:
    path = tmp_path / "tiny-x4.safetensors"
    save_file(tiny_esrgan_state(4), str(path))
    model = load_sr_checkpoint(path=path)
    with pytest.raises(SRScaleMismatchError, match=r"upsamples x4, but the coarse image needs x2"):
        model.passes_for(factor=2)
    with pytest.raises(SRScaleMismatchError):
        model.upsample(torch.zeros(1, 3, 8, 8), factor=8, batch_size=1, device="cpu")


def test_overshoot_resize_when_the_model_allows_it(tmp_path: Path) -> None:
    path = tmp_path / "tiny-x4.safetensors"
    save_file(tiny_esrgan_state(4), str(path))
    descriptor = load_sr_checkpoint(path=path).descriptor
    model = PretrainedSR(descriptor, provenance={}, resize_overshoot=True)
    plan = model.plan(factor=2)
    assert plan["passes"] == 1 and plan["resize"] == "bicubic-antialias"
    assert model.plan(factor=8)["passes"] == 2 and model.plan(factor=8)["resize"]
    assert model.plan(factor=16)["resize"] is None
    out = model.upsample(torch.zeros(2, 3, 8, 8), factor=2, batch_size=2, device="cpu")
    assert out.shape == (2, 3, 16, 16)
