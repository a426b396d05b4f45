"""Deterministic mode: seeds, deterministic kernels, fixed threads; and what identifies the code.

Seeds are set inside every worker (Ray workers do not inherit them) and nothing in the
deterministic path depends on wall-clock time.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import numpy as np

_PACKAGE_ROOT = Path(__file__).resolve().parents[1]
VERSIONED_LIBRARIES = ("torch", "numpy", "pyarrow", "deltalake", "scikit-learn", "scipy", "ray", "safetensors")


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch; in deterministic mode also force deterministic kernels and one thread."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        # deterministic mode also NaN-fills every new uninitialised tensor, a debugging aid that costs
        # ~4% of a training step here; no dmas code reads memory before writing it (same bytes either way)
        torch.utils.deterministic.fill_uninitialized_memory = False
        torch.set_num_threads(1)
        torch.backends.cudnn.benchmark = False
    else:  # fast mode: any kernel, every core (what the determinism-cost benchmark compares against)
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(os.cpu_count() or 1)


@contextmanager
def torch_state_restored() -> Iterator[None]:
    """Put back torch's thread count and deterministic switches after the block (which seeds)."""
    import torch

    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        torch.utils.deterministic.fill_uninitialized_memory = fill


def code_version() -> str:
    """sha256 over the dmas source files (paths and bytes), so any code change changes the runs' ids."""
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE_ROOT.rglob("*.py")):
        relative = path.relative_to(_PACKAGE_ROOT).as_posix()
        digest.update(relative.encode() + b"\0" + path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape the trained numbers."""
    versions = {}
    for name in VERSIONED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions
