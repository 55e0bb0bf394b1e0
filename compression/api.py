"""Method configs, the `METHODS` registry and `compress`: the config type is the dispatch key."""
from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from genmodels.base import GenerativeModel
from genmodels.registry import register

# Execution paths a compressed model can report (results column `execution`).
EXECUTION_DENSE = "dense"  # plain fp32 weights, nothing removed
EXECUTION_MASKED = "masked"  # zeros stored in dense tensors: no kernel skips them
EXECUTION_SHRUNK = "shrunk"  # physically smaller dense model (structured pruning, students)
EXECUTION_SIMULATED = "simulated"  # fake-quant: dequantized fp32 weights run on fp32 kernels
EXECUTION_INT8_KERNEL = "int8-kernel"  # real int8 kernels (torchao / torch.ao dynamic)


@dataclass(frozen=True)
class MethodConfig:
    """Base of every method config. Subclasses are frozen dataclasses validated in __post_init__.

    `method` is the registry name (results column `method`). `settings()` maps the config to the
    results' setting columns (bench.results.schema.SETTING_COLUMNS); keys not in that list go to the
    `settings_json` column.
    """

    method: ClassVar[str] = ""

    def settings(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def check_applicable(self, model: GenerativeModel) -> None:
        """Raise MethodNotApplicable when this method cannot apply to `model`'s family (e.g.
        sampling steps of a GAN). Every method applies to every family unless it overrides this."""


class MethodNotApplicable(ValueError):
    """A method asked of a family it does not apply to; the message names both."""


@dataclass(frozen=True)
class CompressionContext:
    """What a handler may need besides the model: training images, a seed and a device."""

    train_x: torch.Tensor | None = None  # (N, C, H, W) in [0, 1]
    seed: int = 0
    device: str = "cpu"
    # A lower-is-better sample-quality score of a candidate model (the runner passes a held-out
    # FID-proxy: its own latents, training images as the real side, never the evaluation's);
    # methods that choose among candidates (quant_mixed) decide by it when it is given.
    score: Callable[[GenerativeModel], float] | None = None


@dataclass
class CompressedModel:
    """A compressed model plus its own accounting.

    `model` is always a plain, runnable GenerativeModel (no prune reparametrisation). Handlers
    record which tensors they changed; quantization handlers put the packed representation of
    each quantized tensor in `quantized` (name -> object with `.dequantize()`, `.packed_bytes()`,
    `.bits`), which `save` writes instead of the fp32 tensor.
    """

    model: GenerativeModel
    steps: tuple[MethodConfig, ...] = ()
    execution: str = EXECUTION_DENSE
    pruned_tensors: tuple[str, ...] = ()
    quantized: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return "+".join(s.method for s in self.steps) or "baseline"

    def settings(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for step in self.steps:
            merged.update(step.settings())
        return merged


Handler = Callable[[CompressedModel, Any, CompressionContext], CompressedModel]


@dataclass(frozen=True)
class MethodSpec:
    config_cls: type[MethodConfig]
    handler: Handler


METHODS: dict[str, MethodSpec] = {}
_BY_CONFIG: dict[type, MethodSpec] = {}


def register_method(config_cls: type[MethodConfig]) -> Callable[[Handler], Handler]:
    """Register `handler(cm, config, ctx) -> CompressedModel` for `config_cls` by its `method`."""

    def decorator(handler: Handler) -> Handler:
        spec = MethodSpec(config_cls, handler)
        register(METHODS, config_cls.method)(spec)
        _BY_CONFIG[config_cls] = spec
        return handler

    return decorator


def as_compressed(model: GenerativeModel | CompressedModel) -> CompressedModel:
    return model if isinstance(model, CompressedModel) else CompressedModel(model=model)


def compress(
    model: GenerativeModel | CompressedModel,
    config: MethodConfig,
    ctx: CompressionContext | None = None,
) -> CompressedModel:
    """Apply one method. The input is never mutated: the handler gets a deep copy."""
    _ensure_methods_loaded()
    spec = _BY_CONFIG.get(type(config))
    if spec is None:
        raise KeyError(f"no handler for {type(config).__name__}; registered: {sorted(METHODS)}")
    config.check_applicable(as_compressed(model).model)
    cm = copy.deepcopy(as_compressed(model))
    out = spec.handler(cm, config, ctx or CompressionContext())
    out.steps = (*cm.steps, config)
    return out


def apply_pipeline(
    model: GenerativeModel | CompressedModel,
    configs: Sequence[MethodConfig],
    ctx: CompressionContext | None = None,
) -> CompressedModel:
    """Apply configs in order; accounting composes because each step sees the previous result."""
    cm = as_compressed(model)
    for config in configs:
        cm = compress(cm, config, ctx)
    return cm


def config_from_dict(table: dict[str, Any]) -> MethodConfig:
    """Build a config from {"method": name, **fields}; unknown keys raise TypeError naming them."""
    _ensure_methods_loaded()
    table = dict(table)
    name = table.pop("method", None)
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; allowed: {', '.join(sorted(METHODS))}")
    cls = METHODS[name].config_cls
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(
            f"unknown key(s) {unknown} for method {name!r}; allowed: {', '.join(sorted(allowed))}"
        )
    return cls(**table)


def _ensure_methods_loaded() -> None:
    # Importing the method modules fills METHODS through their decorators (no star imports).
    import compression.methods  # noqa: F401
