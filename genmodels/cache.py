"""Content-hashed, atomic, code-free caching of tensors (checkpoints, feature statistics)."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

CACHE_ENV = "GENBENCH_CACHE"


class CorruptCacheError(RuntimeError):
    """A cache file failed its content hash or could not be parsed; it must be rebuilt."""


def cache_dir() -> Path:
    """Root of the shared cache: $GENBENCH_CACHE, else ~/.cache/genbench."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "genbench"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_hash(payload: Any, length: int = 16) -> str:
    """Stable hash of a JSON-serialisable payload (sorted keys)."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same directory, fsync, then rename (no torn files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Save tensors as safetensors (no code in the file) with a sha256 of the tensor bytes in
    the metadata, atomically."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    metadata = {"meta": json.dumps(meta, sort_keys=True, default=str),
                "sha256": _digest(tensors)}
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load a file written by `save_tensors`; raise CorruptCacheError if it is not a valid
    safetensors file (a pickle, a truncated file) or its content hash does not match."""
    path = Path(path)
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CorruptCacheError(
            f"{path} is not a valid safetensors file ({exc}); it will be rebuilt"
        ) from exc
    if metadata.get("sha256") != _digest(tensors):
        raise CorruptCacheError(f"{path} failed its content hash; it will be rebuilt")
    return tensors, json.loads(metadata.get("meta", "{}"))


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(tuple(tensor.shape)).encode())
        # reshape(-1): a 0-d tensor (BatchNorm's num_batches_tracked) cannot be viewed as bytes.
        flat = tensor.reshape(-1)
        digest.update(flat.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()
