"""The `compiled` runtime: torch.compile output equals eager; warmed up at deploy; CUDA skips."""
from __future__ import annotations

import pickle

import pytest
import torch

from compression.api import as_compressed
from compression.runtimes import RuntimeContext, get_runtime
from compression.runtimes.compiled import CompiledModel
from tests.compression.conftest import TINY_SHAPE, build_model


def _check(model, device: str) -> None:
    cm = as_compressed(model)
    deployed = get_runtime("compiled").deploy(cm, device, RuntimeContext())
    assert isinstance(deployed.model, CompiledModel) and deployed.execution == "inductor"
    assert deployed.model.family == model.family and not deployed.changes_outputs
    assert any("compile + warm-up" in note for note in deployed.notes)
    assert deployed.export_max_abs_err is not None and deployed.export_max_abs_err <= 1e-5
    for batch in (1, 3):
        z = torch.randn(batch, model.latent_dim, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            out = deployed.model(z.to(device))
            assert out.shape == (batch, *TINY_SHAPE)
            assert (out.cpu() - model(z.to(model.device)).cpu()).abs().max() <= 1e-5


def test_compiled_vae_matches_eager_cpu() -> None:
    _check(build_model("vae"), "cpu")


def test_compiled_model_pickles_without_its_compiled_callable() -> None:
    model = CompiledModel(build_model("vae"))
    clone = pickle.loads(pickle.dumps(model))
    assert clone._compiled is None and clone.family == "vae"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_compiled_vae_matches_eager_cuda() -> None:
    _check(build_model("vae").cuda(), "cuda")
