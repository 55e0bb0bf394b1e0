"""Like with like: the run settings that must agree before two runs' numbers are compared."""
from __future__ import annotations

import json
from typing import Any

# config keys that decide every quality number: the dataset, how it is evaluated (n_samples,
# KID subsets, IWAE k, ...), how the reference models are trained. Seeds, grids, batch sizes
# and devices are not among them: compare matches the rows both runs have and says so.
SETTING_KEYS = ("dataset", "eval", "train")


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(_flatten(value[key], f"{prefix}.{key}"))
        return out  # an empty table sets nothing
    return {prefix: value}


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)


def settings_differences(base_run: dict[str, Any], cur_run: dict[str, Any]) -> list[str]:
    """'eval.iwae_k: 16 vs 64', 'feature_net: d1ee... vs 77ab...', ... (empty: like with like).

    Compares config.dataset, config.eval, config.train, the settings of the families both runs
    have (config.families) and the feature network id (run.json feature_net.id; a side that
    does not record one is not a difference, old runs did not).
    """
    base_config = base_run.get("config") or {}
    cur_config = cur_run.get("config") or {}
    if not isinstance(base_config, dict) or not isinstance(cur_config, dict):
        return []  # an old run.json with the config as text: nothing to compare
    base_flat: dict[str, Any] = {}
    cur_flat: dict[str, Any] = {}
    for key in SETTING_KEYS:
        if key in base_config or key in cur_config:
            base_flat.update(_flatten(base_config.get(key), key))
            cur_flat.update(_flatten(cur_config.get(key), key))
    base_families = base_config.get("families") or {}
    cur_families = cur_config.get("families") or {}
    if isinstance(base_families, dict) and isinstance(cur_families, dict):
        for family in sorted(set(base_families) & set(cur_families)):
            base_flat.update(_flatten(base_families[family], f"families.{family}"))
            cur_flat.update(_flatten(cur_families[family], f"families.{family}"))
    out = [f"{key}: {_show(base_flat.get(key))} vs {_show(cur_flat.get(key))}"
           for key in sorted(set(base_flat) | set(cur_flat))
           if base_flat.get(key) != cur_flat.get(key)]
    base_net = (base_run.get("feature_net") or {}).get("id")
    cur_net = (cur_run.get("feature_net") or {}).get("id")
    if base_net and cur_net and base_net != cur_net:
        out.append(f"feature_net: {base_net} vs {cur_net}")
    return out
