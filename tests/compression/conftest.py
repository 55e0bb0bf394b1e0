"""Tiny-model fixtures shared by every compression test (pruning, distillation, quantization).

Fixtures:
  * `family`       parametrized over the model registry (`genmodels.models.MODELS`).
  * `make_model`   factory: make_model(family, width=0.25, seed=0) -> tiny model in eval().
  * `tiny_models`  {family: tiny model} for every registered family.
  * `ctx`          CompressionContext with 64 random training images of TINY_SHAPE, seed 0.
Models are `MODELS[family](image_shape=TINY_SHAPE, latent_dim=TINY_LATENT, width=...)`,
seeded, in eval mode.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch

from compression.api import CompressionContext
from genmodels.base import GenerativeModel
from genmodels.models import MODELS

TINY_SHAPE = (1, 28, 28)
TINY_LATENT = 8
TINY_WIDTH = 0.25
# Per-family constructor arguments of the tiny models: ddpm samples with 4 DDIM steps (its
# default 50 would make every compression test 50 UNet calls per forward).
TINY_KWARGS = {"ddpm": {"steps": 4}}
N_TRAIN = 64


FAMILIES = sorted(MODELS)

# The deployment runtimes' packages are the optional `runtimes` extra: their tests skip without it.
_MISSING = [m for m in ("onnx", "onnxscript", "onnxruntime", "openvino")
            if importlib.util.find_spec(m) is None]
NEEDS_ORT = pytest.mark.skipif(bool({"onnx", "onnxscript", "onnxruntime"} & set(_MISSING)),
                               reason="needs the `runtimes` extra (onnx, onnxscript, onnxruntime)")
NEEDS_OPENVINO = pytest.mark.skipif("openvino" in _MISSING, reason="needs openvino")


def build_model(family: str, width: float = TINY_WIDTH, seed: int = 0) -> GenerativeModel:
    torch.manual_seed(seed)
    model = MODELS[family](
        image_shape=TINY_SHAPE, latent_dim=TINY_LATENT, width=width,
        **TINY_KWARGS.get(family, {}),
    )
    return model.eval()


@pytest.fixture(params=FAMILIES)
def family(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_model():
    return build_model


@pytest.fixture
def tiny_models() -> dict[str, GenerativeModel]:
    return {name: build_model(name) for name in FAMILIES}


@pytest.fixture
def ctx() -> CompressionContext:
    gen = torch.Generator().manual_seed(0)
    return CompressionContext(train_x=torch.rand(N_TRAIN, *TINY_SHAPE, generator=gen), seed=0)


# Adaptive methods measure a drift table over every layer x bit-width (or sparsity), each a
# pass of the model's sampler: on the ddpm that is its whole DDIM loop per probe, about a CPU
# minute per compression on the tiny model. Its registry-wide cases run with the slow tests.
SLOW_ON_DDPM = ("quant_mixed", "prune_adaptive")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    long_ok = bool(os.environ.get("GENBENCH_LONG_TESTS"))
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("family") != "ddpm":
            continue
        if any(str(v).startswith(SLOW_ON_DDPM) for v in params.values()) or (
                "adaptive" in item.path.name):
            item.add_marker(pytest.mark.slow)
            # Minutes each: kept out of every CI run unless asked for (what they cover on the
            # other families runs there).
            if not long_ok:
                item.add_marker(pytest.mark.skip(
                    reason="adaptive method on the ddpm (minutes): set GENBENCH_LONG_TESTS=1"))

