"""`genbench sensitivity DIR`: each layer alone quantized or pruned; drift, FID-proxy and ELBO."""
from __future__ import annotations

import argparse
import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from bench.errors import InputError
from bench.results.store import csv_bytes
from compression.accounting import prunable_tensors
from compression.adaptive.sensitivity import (
    PROBE_SIZE,
    WeightVariant,
    drift_table,
    prune_variant,
    quant_variant,
)
from genmodels.cache import atomic_write_bytes

SENSITIVITY_FILE = "sensitivity.csv"
QUANT_BITS = (8, 4, 3, 2)
PRUNE_SPARSITIES = (0.5, 0.75, 0.9)
KIND_QUANT, KIND_PRUNE = "quant", "prune"
# The gate: FID-proxy (and the VAEs' ELBO) is measured, with paired 95% intervals, only for the
# (layer, setting) pairs whose drift is at least this per-pixel MSE on the probe, i.e. an RMS
# pixel change of 0.01 on [0, 1] images; below it the row says `evaluated` = False and leaves
# the deltas empty. 0 measures every pair.
DRIFT_GATE = 1e-4
SENSITIVITY_COLUMNS = [
    "family", "seed", "layer", "params", "setting_kind", "setting_value", "setting", "drift_mse",
    "evaluated", "fid_proxy_delta", "fid_proxy_delta_ci_low", "fid_proxy_delta_ci_high",
    "elbo_nats_delta", "elbo_nats_delta_ci_low", "elbo_nats_delta_ci_high",
]
_DELTAS = [c for c in SENSITIVITY_COLUMNS if c.startswith(("fid_proxy_", "elbo_nats_"))]


@dataclass(frozen=True)
class Setting:
    kind: str
    value: float
    variant: WeightVariant

    @property
    def label(self) -> str:
        return f"{int(self.value)}-bit" if self.kind == KIND_QUANT else f"{self.value:.0%} pruned"


def settings() -> list[Setting]:
    """The grid of one-layer settings: 8/4/3/2-bit (the uniform `quant` quantizer: affine, per
    channel, MSE clipping) and 50/75/90% layer-wise magnitude pruning."""
    return ([Setting(KIND_QUANT, b, quant_variant(b)) for b in QUANT_BITS]
            + [Setting(KIND_PRUNE, s, prune_variant(s)) for s in PRUNE_SPARSITIES])


def with_layer(model: torch.nn.Module, layer: str, setting: Setting) -> torch.nn.Module:
    """A copy of `model` with only `layer` (a prunable weight's name) changed by `setting`."""
    variant = copy.deepcopy(model).eval()
    for name, module, pname in prunable_tensors(variant):
        if name == layer:
            weight = getattr(module, pname)
            with torch.no_grad():
                weight.copy_(setting.variant(weight.detach().clone(), module))
    return variant


def family_sensitivity(model: Any, family: str, seed: int, evaluator: Any,
                       test_x: torch.Tensor | None, drift_gate: float = DRIFT_GATE
                       ) -> list[dict[str, Any]]:
    """Tidy rows (SENSITIVITY_COLUMNS) of one baseline: drift on the first PROBE_SIZE common
    latents of `evaluator` (plus, for VAEs, reconstructions of the first PROBE_SIZE test images)
    for every layer x setting; FID-proxy / ELBO deltas with their paired intervals from
    `evaluator.evaluate(variant, baseline=model)` where the drift passes the gate."""
    model = model.eval()
    targets = prunable_tensors(model)
    grid = settings()
    z = evaluator.latent(model)[:PROBE_SIZE]
    x = test_x[:PROBE_SIZE].to(model.device) if model.is_vae and test_x is not None else None
    drift = drift_table(model, targets, [s.variant for s in grid], z, x)
    rows = []
    for i, (layer, module, pname) in enumerate(targets):
        for j, setting in enumerate(grid):
            row: dict[str, Any] = {
                "family": family, "seed": seed, "layer": layer,
                "params": getattr(module, pname).numel(), "setting_kind": setting.kind,
                "setting_value": setting.value, "setting": setting.label,
                "drift_mse": float(drift[i, j]), "evaluated": bool(drift[i, j] >= drift_gate)}
            if row["evaluated"]:
                metrics = evaluator.evaluate(with_layer(model, layer, setting), baseline=model)
                row.update({c: metrics.get(c) for c in _DELTAS})
            rows.append(row)
    return rows


def write_sensitivity(rows: list[dict[str, Any]], out_dir: Path) -> Path:
    """Write out_dir/sensitivity.csv atomically (a reader never sees half a file)."""
    path = out_dir / SENSITIVITY_FILE
    atomic_write_bytes(path, csv_bytes(rows, SENSITIVITY_COLUMNS))
    return path


def read_sensitivity(path: Path) -> pd.DataFrame:
    """The tidy frame of a sensitivity.csv; a clear InputError when it is missing or foreign."""
    if not path.is_file():
        raise InputError(f"{path} not found: run `genbench sensitivity DIR` first")
    frame = pd.read_csv(path)
    missing = [c for c in SENSITIVITY_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{path} lacks columns {missing}: not a genbench sensitivity.csv")
    return frame


def _config(args: argparse.Namespace, out: Path):
    from bench.config.sweep import load_config, load_preset
    from bench.results.store import ResultStore

    if args.preset and args.config:
        raise InputError("give at most one of --preset NAME or --config FILE")
    if args.config:
        return load_config(args.config)
    preset = args.preset or (ResultStore(out).read_run().get("preset") if out.is_dir() else None)
    if not preset:
        raise InputError(f"{out} has no run.json naming a preset: pass --preset NAME or "
                         "--config FILE (the sweep whose baselines to analyse)")
    return load_preset(preset)


def cmd_sensitivity(args: argparse.Namespace) -> int:
    from bench.run.runner import FeatureOutcome, evaluator, load_dataset, train_task
    from genmodels.yardstick import load_feature_net

    out = Path(args.dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a directory")
    if not args.drift_gate >= 0 or not math.isfinite(args.drift_gate):
        raise InputError(f"--drift-gate must be a finite number >= 0; got {args.drift_gate}")
    config = _config(args, out)
    families = args.families.split(",") if args.families else list(config.families)
    unknown = sorted(set(families) - set(config.families))
    if unknown:
        raise InputError(f"--families {unknown} not in the config; choose from "
                         f"{', '.join(config.families)}")
    dataset = load_dataset(config)
    net, info = load_feature_net(dataset, config.features, seed=0, progress=False)
    quality = evaluator(config, FeatureOutcome(net=net, info=dict(info)))
    rows: list[dict[str, Any]] = []
    for family in families:
        for seed in config.seeds:
            trained = train_task(config, (config.dataset, family, seed))
            if trained.error:
                raise InputError(f"baseline {family} seed {seed} failed: {trained.error}")
            rows += family_sensitivity(trained.model, family, seed, quality, dataset.test_x,
                                       args.drift_gate)
            print(f"{family} seed {seed}: {sum(r['family'] == family for r in rows)} rows")
    out.mkdir(parents=True, exist_ok=True)
    path = write_sensitivity(rows, out)
    from bench.plots.sensitivity import plot_sensitivity

    plots = plot_sensitivity(pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS), out / "plots")
    print(f"{path}: {len(rows)} rows, {sum(r['evaluated'] for r in rows)} with FID-proxy; "
          f"{len(plots)} heatmap files in {out / 'plots'}")
    return 0


def register_cli(sub: Any) -> None:
    """Add `genbench sensitivity DIR` to the CLI's subcommands."""
    parser = sub.add_parser("sensitivity", help="per-layer sensitivity of the baselines "
                            "(writes DIR/sensitivity.csv and heatmaps in DIR/plots)")
    parser.add_argument("dir", help="results directory (its run.json names the preset)")
    parser.add_argument("--preset", help="the preset whose baselines to analyse")
    parser.add_argument("--config", help="a sweep TOML whose baselines to analyse")
    parser.add_argument("--families", help="comma-separated subset of the config's families")
    parser.add_argument("--drift-gate", type=float, default=DRIFT_GATE,
                        help=f"measure FID-proxy only where drift >= this (default "
                             f"{DRIFT_GATE:g}; 0 = everywhere)")
    parser.set_defaults(func=cmd_sensitivity)
