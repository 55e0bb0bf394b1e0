"""The `MODELS` registry of reference families (ddpm, gan, vae, rvae); modules register."""

from __future__ import annotations

from typing import Any

from genmodels.base import GenerativeModel

MODELS: dict[str, type[GenerativeModel]] = {}


def build_model(family: str, **kwargs: Any) -> GenerativeModel:
    """`MODELS[family](**kwargs)`; an unknown family raises ValueError listing the allowed ones."""
    if family not in MODELS:
        raise ValueError(f"unknown model family {family!r}; allowed: {', '.join(sorted(MODELS))}")
    return MODELS[family](**kwargs)


# Imported after MODELS exists: each module fills it with @register(MODELS, name).
from genmodels.models import diffusion, gan, rvae, vae  # noqa: E402,F401
