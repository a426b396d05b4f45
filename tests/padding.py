"""Garbage for padded batch entries: the model and explanation tests check that padding is never read."""

from __future__ import annotations

import torch

# padded entries of each mask, and the keys holding them
PADDED = {
    "event_mask": ("event_type", "event_value", "event_dt_prev", "event_age"),
    "neighbor_mask": ("neighbor_attributes", "neighbor_type", "neighbor_value"),
    "artifact_mask": ("artifact_vector", "artifact_type"),
}


def fill_padding_with_garbage(batch: dict, g: torch.Generator, nan_share: float) -> None:
    """In place: every padded entry becomes a large value (floats, `nan_share` of them NaN) or an out-of-range type."""
    for mask_key, keys in PADDED.items():
        padded = ~batch[mask_key]
        for key in keys:
            tensor = batch[key]
            if tensor.dtype == torch.int64:
                noise = torch.randint(0, 100, tensor.shape, generator=g)
            else:
                noise = torch.randn(tensor.shape, generator=g) * 100
                noise[torch.rand(tensor.shape, generator=g) < nan_share] = float("nan")
            tensor[padded] = noise[padded]
