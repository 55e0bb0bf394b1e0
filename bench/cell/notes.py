"""The notes and collapse columns of one cell: what ran simulated, emptied layers, a lost latent.

`notes` is a compact JSON object (sorted keys, no spaces), or "" when there is nothing to say:
  * `int8_kernel_layers`, `simulated_int8_layers`, `torch_ao_warning`, `kept_channels`,
    `bits_per_layer` and `bits_selection` (quant_mixed: the winning candidate, every
    candidate's joint drift and bits per weight), `sparsity_allocation` (prune_adaptive),
    `split_shortcut_layers` (quant_wa: the layers whose input parts got their own ranges): copied
    from `CompressedModel.notes` (ROW_NOTES) when not empty. Training histories (losses, drift)
    and per-layer sparsities stay out of the row: they would swamp it.
  * `layers_emptied`: prunable weights that are all zeros in the final model (pruned to 100%).
  * `weight_granularity`: {weight: granularity} of the stored weights whose granularity is not
    the cell's `granularity` setting (absent when every weight got what the row says).
  * `collapsed`: true when the output no longer depends on the latent (see `latent_std`).
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np

from bench.results.schema import COLLAPSE_STD
from compression.accounting import layers_emptied

ROW_NOTES = ("int8_kernel_layers", "simulated_int8_layers", "torch_ao_warning", "kept_channels",
             "bits_per_layer", "bits_selection",
             "sparsity_allocation",  # these three: compression.adaptive
             "split_shortcut_layers")  # quant_wa: {layer reading a concat: its parts' channels}


def latent_std(samples: np.ndarray) -> float:
    """Per-pixel standard deviation across images generated from different latents, averaged
    over pixels: mean_p std_i x_i[p] (ddof=1), samples (N, C, H, W) with N >= 2, x_i = G(z_i).
    0 when G ignores z (mode collapse to a single image)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(f"latent_std needs at least 2 images (N, ...); got shape {x.shape}")
    flat = x.reshape(x.shape[0], -1)
    # Shifted by the first image (std is shift-invariant): identical images give exactly 0.
    return float((flat - flat[:1]).std(axis=0, ddof=1).mean())


def collapse_columns(samples: np.ndarray) -> dict[str, Any]:
    """schema.COLLAPSE_COLUMNS: latent_std and collapsed = latent_std < schema.COLLAPSE_STD."""
    std = latent_std(samples)
    return {"latent_std": std, "collapsed": bool(std < COLLAPSE_STD)}


def granularity_of(quantized: Any) -> str:
    """"tensor", "channel" or "group" of a stored weight (QuantizedWeight: axis, group_size)."""
    if getattr(quantized, "group_size", None) is not None:
        return "group"
    return "tensor" if getattr(quantized, "axis", None) is None else "channel"


def _setting_granularity(cm: Any) -> str | None:
    # The last quantizing step's setting (a structured-pruning step says "channel" too).
    quantizing = [s.settings() for s in cm.steps
                  if s.settings().get("bits", s.settings().get("avg_bits")) is not None]
    return quantizing[-1].get("granularity") if quantizing else None


def cell_notes(cm: Any, collapsed: bool) -> dict[str, Any]:
    """The notes object of a compressed model (a CompressedModel) as described above."""
    notes = {k: cm.notes[k] for k in ROW_NOTES if cm.notes.get(k) not in (None, "", [], {})}
    emptied = layers_emptied(cm.model)
    if emptied:
        notes["layers_emptied"] = emptied
    said = _setting_granularity(cm)
    differing = {name: granularity_of(q) for name, q in sorted(cm.quantized.items())
                 if granularity_of(q) != said}
    if differing:
        notes["weight_granularity"] = differing
    if collapsed:
        notes["collapsed"] = True
    return notes


def notes_json(notes: dict[str, Any]) -> str:
    """Compact JSON with sorted keys; "" for no notes (an empty cell in results.csv)."""
    return json.dumps(notes, sort_keys=True, separators=(",", ":"), default=str) if notes else ""


def notes_columns(cm: Any, samples: np.ndarray) -> dict[str, Any]:
    """`notes`, `latent_std`, `collapsed` of a cell from its model and its sample images
    (generated from the common latents, the same z for every cell)."""
    collapse = collapse_columns(samples)
    return {**collapse, "notes": notes_json(cell_notes(cm, collapse["collapsed"]))}
