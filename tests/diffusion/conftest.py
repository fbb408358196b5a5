"""Fixtures for the GLIDE tests: the reference directory and its tiny models (loaded once per session)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from synthdata.diffusion.model import Text2ImUNet, create_model

REF = Path(__file__).resolve().parents[1] / "data" / "glide_reference"


@pytest.fixture(autouse=True, scope="package")
def _one_torch_thread():
    """Run these small models on one thread: with several processes sharing 2 cores, OpenMP's spinning
    threads make them 10-100x slower. Restored afterwards for the rest of the suite."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def ref_dir() -> Path:
    return REF


@pytest.fixture(scope="session")
def cases() -> dict:
    return json.loads((REF / "cases.json").read_text())


@pytest.fixture(scope="session")
def tensors() -> dict[str, torch.Tensor]:
    return load_file(str(REF / "cases.safetensors"))


def case(tensors: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    prefix = name + "."
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def rel(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.double() - ref.double()).norm() / ref.double().norm())


def _tiny(cases: dict, name: str) -> Text2ImUNet:
    model = create_model(cases[name]["options"])
    model.load_state_dict(load_file(str(REF / f"{name}.safetensors")), strict=True)
    return model.eval()


@pytest.fixture(scope="session")
def tiny_base(cases: dict) -> Text2ImUNet:
    return _tiny(cases, "tiny_base")


@pytest.fixture(scope="session")
def tiny_upsample(cases: dict) -> Text2ImUNet:
    return _tiny(cases, "tiny_upsample")
