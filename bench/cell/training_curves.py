"""Training curves beside a run: DIR/training/<family>-seed<seed>.json, one per baseline.

Each file is {"family": str, "seed": int, "curve": [{"epoch": int, "loss": float, ...}, ...]},
one entry per epoch from the checkpoint's metadata (genmodels.train `info["curve"]`): GAN
"loss" (generator, non-saturating) and "d_loss"; VAE/RVAE "loss" (the training surrogate
-ELBO with KL weight beta and free bits), "recon" (-log p(x|z), nats/image), "kl" (nats/image)
and "beta". Every family also has "fid_proxy" on the scored epochs (every k-th and the last,
at most genmodels.curve_fid.CURVE_FID_POINTS), and the file then states "fid_proxy_samples",
the number of samples per point (a fixed latent batch; fewer than the cells' evaluation, so the
curve is a trend, biased upwards). A checkpoint trained before curves existed has none: no file
is written for it; one trained before the FID-proxy curve has the losses only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genmodels.cache import atomic_write_bytes

TRAINING_DIR = "training"


def curve_path(root: str | Path, family: str, seed: int) -> Path:
    """DIR/training/<family>-seed<seed>.json."""
    return Path(root) / TRAINING_DIR / f"{family}-seed{int(seed)}.json"


def write_training_curve(root: str | Path, record: dict[str, Any]) -> Path | None:
    """Write the curve of a cell record's baseline (its `train_info`) unless the file already
    holds it; returns the path written, None when there is no curve or nothing changed."""
    curve = (record.get("train_info") or {}).get("curve")
    result = record.get("result") or {}
    if not curve or result.get("family") is None or result.get("seed") is None:
        return None
    payload = {"family": str(result["family"]), "seed": int(result["seed"]), "curve": curve}
    samples = (record.get("train_info") or {}).get("curve_fid_samples")
    if samples is not None:
        payload["fid_proxy_samples"] = int(samples)
    text = json.dumps(payload, indent=1, sort_keys=True, allow_nan=False)
    path = curve_path(root, payload["family"], payload["seed"])
    if path.is_file() and path.read_text() == text:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode())  # a reader never sees half a file
    return path


def read_training_curves(root: str | Path) -> list[dict[str, Any]]:
    """Every DIR/training/*.json, sorted by (family, seed); unreadable files are skipped."""
    curves = []
    for path in sorted((Path(root) / TRAINING_DIR).glob("*.json")):
        try:
            payload = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(payload, dict) and isinstance(payload.get("curve"), list):
            curves.append(payload)
    return sorted(curves, key=lambda p: (str(p.get("family")), int(p.get("seed", 0))))
