"""The batch contract between the data pipeline and the model: keys, dtypes and named dimensions.

B entities, A attributes, L events, K neighbours, M artifacts, D = the longest artifact vector.
Masks are True for real items; padding may sit on either side and its values are never read.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dmas.errors import DmasError
from dmas.model.config import ModelConfig

BATCH_SPEC: dict[str, tuple[torch.dtype, tuple[str, ...]]] = {
    "attributes": (torch.float32, ("B", "A")),
    "event_type": (torch.int64, ("B", "L")),  # 0 = padding, 1..n_event_types
    "event_value": (torch.float32, ("B", "L")),  # standardised
    "event_dt_prev": (torch.float32, ("B", "L")),  # log1p(seconds since the previous event), 0 for the first
    "event_age": (torch.float32, ("B", "L")),  # log1p(seconds from the event to the reference time)
    "event_mask": (torch.bool, ("B", "L")),
    "neighbor_attributes": (torch.float32, ("B", "K", "A")),
    "neighbor_type": (torch.int64, ("B", "K")),  # 0 = padding, 1..n_interaction_types
    "neighbor_value": (torch.float32, ("B", "K")),
    "neighbor_mask": (torch.bool, ("B", "K")),
    "artifact_vector": (torch.float32, ("B", "M", "D")),  # zero padded past the type's length
    "artifact_type": (torch.int64, ("B", "M")),  # 0 = padding, else a key of artifact_dims
    "artifact_mask": (torch.bool, ("B", "M")),
}

# Labels read by the loss; a task whose keys are missing, or whose mask is all False, is absent.
LABEL_SPEC: dict[str, tuple[torch.dtype, tuple[str, ...]]] = {
    "target_regression": (torch.float32, ("B",)),
    "target_regression_mask": (torch.bool, ("B",)),
    "target_binary": (torch.float32, ("B",)),  # 0 or 1
    "target_binary_mask": (torch.bool, ("B",)),
    "target_ranking": (torch.float32, ("B",)),  # graded relevance: higher ranks first
    "target_ranking_mask": (torch.bool, ("B",)),
}

# (type key, mask key, name of the config field bounding it)
_TYPE_KEYS = (
    ("event_type", "event_mask", "n_event_types"),
    ("neighbor_type", "neighbor_mask", "n_interaction_types"),
)


class BatchError(DmasError, ValueError):
    """A batch does not match the contract; the message names the key and what was expected."""


def check_tensors(batch: dict[str, Tensor], spec: dict[str, tuple[torch.dtype, tuple[str, ...]]],
                  known: dict[str, int], known_from: str) -> dict[str, int]:
    """Check presence, dtype and shape of every key of `spec`; return the size of each named dimension.

    `known` fixes sizes given by `known_from` (e.g. A by the model config); otherwise the first key
    using a dimension fixes it for the others.
    """
    missing = [key for key in spec if key not in batch]
    if missing:
        raise BatchError(f"batch is missing {missing}; a batch needs {list(spec)}")
    sizes = dict(known)
    origin = dict.fromkeys(known, known_from)
    for key, (dtype, names) in spec.items():
        tensor = batch[key]
        if not isinstance(tensor, Tensor):
            raise BatchError(f"batch[{key!r}] must be a torch.Tensor, got {type(tensor).__name__}")
        if tensor.dtype != dtype:
            raise BatchError(f"batch[{key!r}] must have dtype {dtype}, got {tensor.dtype}")
        if tensor.dim() != len(names):
            raise BatchError(f"batch[{key!r}] must have shape [{', '.join(names)}], got {list(tensor.shape)}")
        for name, size in zip(names, tensor.shape):
            expected = sizes.setdefault(name, size)
            origin.setdefault(name, f"batch[{key!r}]")
            if size != expected:
                raise BatchError(f"batch[{key!r}] has {name}={size} (shape {list(tensor.shape)}), "
                                 f"but {origin[name]} has {name}={expected}")
    return sizes


def validate_batch(batch: dict[str, Tensor], config: ModelConfig) -> dict[str, int]:
    """Check `batch` against BATCH_SPEC and `config`; return {"B": .., "A": .., "L": .., "K": .., "M": .., "D": ..}.

    Type indices of real items are checked too: out of range they would fail deep inside an embedding.
    """
    sizes = check_tensors(batch, BATCH_SPEC, {"A": config.n_attributes, "D": config.artifact_vector_dim},
                          "the model config (n_attributes, artifact_dims)")
    if sizes["L"] > config.max_events:
        raise BatchError(f"batch['event_type'] has L={sizes['L']} events, more than max_events={config.max_events}")
    for type_key, mask_key, bound in _TYPE_KEYS:
        real = batch[type_key][batch[mask_key]]
        high = getattr(config, bound)
        if real.numel() and not bool(((real >= 1) & (real <= high)).all()):
            raise BatchError(f"batch[{type_key!r}] has real items with types {sorted(set(real.tolist()))}; "
                             f"expected 1..{high} ({bound})")
    real = batch["artifact_type"][batch["artifact_mask"]]
    known = torch.tensor(list(config.artifact_dims), device=real.device)
    if real.numel() and not bool(torch.isin(real, known).all()):
        raise BatchError(f"batch['artifact_type'] has real items with types {sorted(set(real.tolist()))}; "
                         f"expected keys of artifact_dims {list(config.artifact_dims)}")
    return sizes
