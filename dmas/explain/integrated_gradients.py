"""Integrated gradients of one head of a FullModel with respect to one entity's real inputs.

Attributions are over what the data holds (each attribute, each event's value, each artifact's
feature vector, each neighbour's attributes and interaction value), never over latent dimensions,
so an explanation can name them.

Baseline "training_mean": every attributed input is z-scored with training statistics, so its
training mean is 0; the baseline is the same entity with all of them at 0, its event types, times,
interaction types, artifact types and masks unchanged. Every point on the path is then a valid
input ("this entity with average values"), and event tokens keep their type embedding and time
encoding, so they never pass through the all-zero vector, where LayerNorm's curvature made an
all-zero baseline converge badly for FFT blocks.

The path integral: ReLUs and the artifact max-pooling make the gradient jump along the path, and one
Gauss-Legendre rule converges slowly across jumps (on a trained model, 50 nodes left about one entity
in four more than 1% off completeness). So the path is cut into segments, each integrated by Captum's
Gauss-Legendre IG and checked against completeness on its own (its attributions must sum to
f(end) - f(start)); segments that fail are bisected, worst first, until the whole path is within
tolerance or a node budget is spent. Where the gradient is smooth the first pass already converges.
Every decision depends only on computed values, so the result is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from dmas.errors import DmasError
from dmas.model import BATCH_SPEC, FullModel, validate_batch
from dmas.scoring.forward import SCORING_BATCH

if TYPE_CHECKING:
    from captum.attr import IntegratedGradients

TARGETS = ("regression", "logit", "probability", "ranking_score")
BASELINES = ("training_mean",)
# attributed inputs -> the modalities that read them; an input no enabled modality reads is not attributed
ATTRIBUTED: dict[str, tuple[str, ...]] = {
    "attributes": ("attributes", "graph"),
    "event_value": ("events",),
    "neighbor_attributes": ("graph",),
    "neighbor_value": ("graph",),
    "artifact_vector": ("artifacts",),
}
EVENT_TIMES = ("event_dt_prev", "event_age")
EVENT_KEYS = ("event_type", "event_value", *EVENT_TIMES, "event_mask")  # the inputs with an event axis
NODES_PER_SEGMENT = 2  # Gauss-Legendre nodes per segment: n_steps=50 starts as 25 segments
RTOL = 5e-3  # segments are refined until the completeness error is below RTOL * |f(x) - f(baseline)| ...
ATOL = 1e-6  # ... plus ATOL, about float32 rounding of the head's value ...
MAX_NODES_FACTOR = 32  # ... or until refining would take more than 32 * n_steps nodes in all


class ExplainError(DmasError, ValueError):
    """An explanation cannot be computed as asked; the message says what to change."""


@dataclass(frozen=True)
class Attribution:
    """IG attributions of one entity: one array per attributed input, shaped like it without the batch axis.

    Inputs that no enabled modality reads get all-zero arrays. `delta` is the completeness error
    |sum of all attributions - (f_x - f_baseline)|; `n_nodes` the gradient evaluations it took.
    """

    target: str
    baseline: str
    n_steps: int
    n_nodes: int
    attributions: dict[str, np.ndarray]
    f_x: float
    f_baseline: float
    delta: float

    @property
    def total(self) -> float:
        """Sum of all attributions (in float64): what completeness compares with f_x - f_baseline."""
        return _total(self.attributions)


def attribute(model: FullModel, inputs: Mapping[str, Tensor | np.ndarray], target: str,
              baseline: str = "training_mean", n_steps: int = 50, *, event_times: bool = False) -> Attribution:
    """Integrated gradients of head `target` for one entity (a batch of one; tensors or numpy arrays).

    `n_steps` Gauss-Legendre nodes (a multiple of 2) make the first pass; segments failing their
    completeness check are refined. `event_times=True` also attributes each event's time features
    (log time since the previous event, log age) against a baseline of 0: the event at the reference
    time, right after the previous one. The model must be in eval mode, so that dropout is off.
    """
    if target not in TARGETS:
        raise ExplainError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    if baseline not in BASELINES:
        raise ExplainError(f"baseline must be one of {', '.join(BASELINES)}, got {baseline!r}")
    if n_steps < NODES_PER_SEGMENT:
        raise ExplainError(f"n_steps must be at least {NODES_PER_SEGMENT}, got {n_steps}")
    if model.training:
        raise ExplainError("the model is in training mode (dropout is random); call model.eval() first")
    batch = _clean({key: torch.as_tensor(inputs[key]) for key in BATCH_SPEC if key in inputs}, model)
    enabled = set(model.encoders)
    names = [name for name, readers in ATTRIBUTED.items() if enabled & set(readers)]
    if event_times and "events" in enabled:
        names += EVENT_TIMES
    fixed = [key for key in BATCH_SPEC if key not in names]

    def head(*tensors: Tensor) -> Tensor:
        return getattr(model(dict(zip(names + fixed, tensors))), target)

    def path_ends(of: dict[str, Tensor]) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...], tuple[Tensor, ...]]:
        x = tuple(of[name] for name in names)
        return x, tuple(torch.zeros_like(tensor) for tensor in x), tuple(of[key] for key in fixed)

    f_x, f_baseline = _head_as_scored(head, *path_ends(batch))
    from captum.attr import IntegratedGradients  # here, not at import: scoring imports this module's errors

    window = _event_window(batch["event_mask"][0])
    x, origin, context = path_ends({key: value[:, window] if key in EVENT_KEYS else value
                                    for key, value in batch.items()})
    found, n_nodes = _path_integral(IntegratedGradients(head), head, origin, x, context, n_steps,
                                    RTOL * abs(f_x - f_baseline) + ATOL)
    keys = [*ATTRIBUTED, *(EVENT_TIMES if event_times else ())]
    attributions = {key: np.zeros(batch[key].shape[1:], np.float32) for key in keys}
    for name, values in zip(names, found):
        attributions[name][window if name in EVENT_KEYS else slice(None)] = values[0].numpy()
    delta = abs(_total(attributions) - (f_x - f_baseline))
    return Attribution(target, baseline, n_steps, n_nodes, attributions, f_x, f_baseline, delta)


def _event_window(mask: Tensor) -> slice:
    """The event slots from the first real event to the last (one slot when there is none).

    The path integral runs on these slots only: padded slots are masked out of attention (weight
    exactly 0) and are zero going into the spectral mixer's zero-padded FFT, so dropping them leaves
    the head's value unchanged up to float rounding, and the IG passes cost the entity's events, not
    the window's length. f(x) and f(baseline) still come from the full scoring-shape pass.
    """
    real = torch.nonzero(mask).flatten().tolist()
    return slice(real[0], real[-1] + 1) if real else slice(0, 1)


def _path_integral(ig: IntegratedGradients, head, origin: tuple[Tensor, ...], x: tuple[Tensor, ...],
                   context: tuple[Tensor, ...], n_steps: int, tolerance: float) -> tuple[tuple[Tensor, ...], int]:
    """IG from `origin` to `x` as a sum over segments of the path, and the number of nodes used.

    While the segments' completeness errors add up to more than `tolerance`, the segments whose error
    exceeds their share (tolerance * their length) are bisected, worst first, within the node budget.
    """
    count = n_steps // NODES_PER_SEGMENT
    spans = [(i / count, (i + 1) / count) for i in range(count)]
    segments = dict(zip(spans, _segments(ig, head, origin, x, context, spans)))  # span -> (attributions, error)
    n_nodes, budget = count * NODES_PER_SEGMENT, MAX_NODES_FACTOR * n_steps
    while abs(sum(error for _, error in segments.values())) > tolerance:
        worst_first = sorted(segments, key=lambda span: -abs(segments[span][1]) / (span[1] - span[0]))
        failing = [span for span in worst_first if abs(segments[span][1]) > tolerance * (span[1] - span[0])]
        failing = failing[:(budget - n_nodes) // (2 * NODES_PER_SEGMENT)]
        if not failing:
            break
        halves = [half for low, high in failing for half in ((low, (low + high) / 2), ((low + high) / 2, high))]
        for span in failing:
            del segments[span]
        segments.update(zip(halves, _segments(ig, head, origin, x, context, halves)))
        n_nodes += len(halves) * NODES_PER_SEGMENT
    ordered = [segments[span][0] for span in sorted(segments)]
    return tuple(torch.stack([parts[i] for parts in ordered]).sum(dim=0) for i in range(len(x))), n_nodes


def _segments(ig: IntegratedGradients, head, origin: tuple[Tensor, ...], x: tuple[Tensor, ...],
              context: tuple[Tensor, ...],
              segments: list[tuple[float, float]]) -> list[tuple[tuple[Tensor, ...], float]]:
    """(attributions [1, ...] per input, signed completeness error) of each segment, in one batched IG call.

    The error needs the head at both ends of each segment; adjacent segments share an end, so the
    ends are evaluated once each, in one pass (Captum's own check runs two passes of every segment).
    """
    count = len(segments)
    attributions = ig.attribute(
        _points(origin, x, [high for _, high in segments]), baselines=_points(origin, x, [low for low, _ in segments]),
        additional_forward_args=_repeated(context, count), n_steps=NODES_PER_SEGMENT, method="gausslegendre",
        internal_batch_size=count * NODES_PER_SEGMENT)
    ends = sorted({end for span in segments for end in span})
    value = dict(zip(ends, _head_along(head, origin, x, context, ends)))
    found = []
    for i, (low, high) in enumerate(segments):
        total = sum(float(a[i].sum(dtype=torch.float64)) for a in attributions)
        found.append((tuple(a[i:i + 1].detach() for a in attributions), total - (value[high] - value[low])))
    return found


def _points(origin: tuple[Tensor, ...], x: tuple[Tensor, ...], alphas: list[float]) -> tuple[Tensor, ...]:
    """The path's points at `alphas` (a batch of len(alphas)): origin + alpha * (x - origin)."""
    return tuple(o + torch.tensor(alphas).view(len(alphas), *[1] * (t.dim() - 1)) * (t - o) for o, t in zip(origin, x))


def _repeated(context: tuple[Tensor, ...], count: int) -> tuple[Tensor, ...]:
    return tuple(t.expand(count, *t.shape[1:]).contiguous() for t in context)


@torch.no_grad()
def _head_as_scored(head, x: tuple[Tensor, ...], origin: tuple[Tensor, ...],
                    context: tuple[Tensor, ...]) -> tuple[float, float]:
    """The head at `x` and at the baseline in one pass of the scoring shape, so that f_x is, to the bit,
    the prediction served for the entity (dmas.scoring.forward)."""
    pad = SCORING_BATCH - 2
    rows = [torch.cat([point, other, torch.zeros((pad, *point.shape[1:]), dtype=point.dtype)])
            for point, other in zip(x, origin)]
    context_rows = [torch.cat([t, t, torch.zeros((pad, *t.shape[1:]), dtype=t.dtype)]) for t in context]
    values = head(*rows, *context_rows).double()
    return float(values[0]), float(values[1])


@torch.no_grad()
def _head_along(head, origin: tuple[Tensor, ...], x: tuple[Tensor, ...], context: tuple[Tensor, ...],
                alphas: list[float]) -> list[float]:
    """The head's value at the path's points `alphas`, in one pass."""
    return head(*_points(origin, x, alphas), *_repeated(context, len(alphas))).double().tolist()


def _total(attributions: dict[str, np.ndarray]) -> float:
    return float(sum(values.sum(dtype=np.float64) for values in attributions.values()))


def _clean(batch: dict[str, Tensor], model: FullModel) -> dict[str, Tensor]:
    """`batch` validated as one entity, with padded entries (and artifact vectors past their type's length) zeroed.

    The model never reads those entries, so its outputs are unchanged; zeroing them makes input and
    baseline equal there, so their attribution is exactly 0 even when padding holds garbage or NaN.
    """
    sizes = validate_batch(batch, model.config)
    if sizes["B"] != 1:
        raise ExplainError(f"explanations are computed for one entity at a time (a batch of 1), got B={sizes['B']}")
    out = dict(batch)
    for key in ("event_value", *EVENT_TIMES):
        out[key] = torch.where(batch["event_mask"], batch[key], 0.0)
    out["neighbor_value"] = torch.where(batch["neighbor_mask"], batch["neighbor_value"], 0.0)
    out["neighbor_attributes"] = torch.where(batch["neighbor_mask"].unsqueeze(-1), batch["neighbor_attributes"], 0.0)
    lengths = torch.tensor([model.config.artifact_dims.get(int(t), 0) for t in batch["artifact_type"][0]])
    read = batch["artifact_mask"][0].unsqueeze(-1) & (torch.arange(sizes["D"]) < lengths.unsqueeze(-1))  # [M, D]
    out["artifact_vector"] = torch.where(read.unsqueeze(0), batch["artifact_vector"], 0.0)
    return out
