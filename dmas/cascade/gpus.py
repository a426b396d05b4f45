"""Per-GPU utilisation for the cascade's progress, read with `nvidia-smi` (absent on a CPU machine: [])."""

from __future__ import annotations

import shutil
import subprocess

QUERY = "index,utilization.gpu,memory.used,memory.total"


def gpu_utilisation() -> list[dict]:
    """One entry per GPU on this node: {"gpu", "utilisation_percent", "memory_used_mib", "memory_total_mib"}."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        output = subprocess.run(["nvidia-smi", f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"],
                                capture_output=True, text=True, timeout=5, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []  # a driver that does not answer: progress goes on without it
    gpus = []
    for line in output.strip().splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) == 4 and all(field.isdigit() for field in fields):
            index, busy, used, total = map(int, fields)
            gpus.append({"gpu": index, "utilisation_percent": busy, "memory_used_mib": used,
                         "memory_total_mib": total})
    return gpus
