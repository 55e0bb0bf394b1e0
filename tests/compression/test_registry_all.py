"""Every registered method runs on every registered family (METHODS x MODELS).

Each method's config class provides a classmethod `example()` returning a cheap config; a new
method is tested here by being registered (and giving its config an `example()`).
"""

from __future__ import annotations

import math

import pytest
import torch

import compression.methods  # noqa: F401  (fills METHODS)
from compression.accounting import count_macs, count_params
from compression.api import (
    EXECUTION_DENSE,
    EXECUTION_INT8_KERNEL,
    EXECUTION_MASKED,
    EXECUTION_SHRUNK,
    EXECUTION_SIMULATED,
    METHODS,
    MethodNotApplicable,
    compress,
)
from genmodels.base import GenerativeModel

EXECUTIONS = {
    EXECUTION_DENSE,
    EXECUTION_MASKED,
    EXECUTION_SHRUNK,
    EXECUTION_SIMULATED,
    EXECUTION_INT8_KERNEL,
}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_method_runs_on_family(method: str, family: str, make_model, ctx) -> None:
    spec = METHODS[method]
    assert hasattr(spec.config_cls, "example"), f"{spec.config_cls.__name__} needs example()"
    config = spec.config_cls.example()
    model = make_model(family)
    try:
        config.check_applicable(model)
    except MethodNotApplicable:
        # A family-specific method (sampling steps of a diffusion model) refuses the others,
        # naming the family, before any work.
        with pytest.raises(MethodNotApplicable, match=repr(family)):
            compress(model, config, ctx)
        return
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cm = compress(model, config, ctx)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # input intact
    assert isinstance(cm.model, GenerativeModel) and cm.model.family == model.family
    assert cm.method == method and cm.execution in EXECUTIONS
    z = model.latent(3, torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = cm.model(z)
    assert out.shape == (3, *model.image_shape)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert count_params(cm.model) > 0 and count_macs(cm.model, z[:1])[0] > 0
    settings = cm.settings()
    assert all(not isinstance(v, float) or math.isfinite(v) for v in settings.values())
