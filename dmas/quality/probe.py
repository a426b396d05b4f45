"""A small seeded probe model trained on each side of a check: what dimensions 4 and 5 look at.

Gradient health (4) and loss landscape (5) ask how a model *trains* on the candidate compared with the
reference. Both read the same probe: an MLP (tanh, two hidden layers, Adam, no dropout) trained as an
ensemble of `SEEDS` members for `STEPS` minibatch steps on a seeded subsample of each side, with the
same initial weights and batch order on both sides, so only the data differs.

- Task: the target column when the frame names one (regression for a continuous target, classification
  for a discrete one); otherwise self-supervised: predict the continuous column most correlated with
  the others in the reference (without continuous columns, the first discrete one) from the rest.
- Inputs: continuous columns centred on their own side's mean and scaled by the reference's standard
  deviation (so lost variance shows and a mean shift does not); discrete columns one-hot over the
  reference's `MAX_LEVELS` commonest levels plus "other". Missing values are 0 (the centre / no level).
- Held out: `HOLDOUT_ROWS` reference rows neither side trains on, on which both probes are evaluated.
- Both sides train on the same number of rows (the fewer either side has, at most `PROBE_ROWS`): a
  probe fits fewer rows more closely, so unequal sizes would read as a difference of the data.
- Null draws are disjoint splits of the reference (`null_sampling = "split"`): a bootstrap draw
  repeats rows, which a probe fits more easily, and contains the held-out rows, which it then has
  seen, so every null draw would look memorised. Both dimensions rescale their departures from the
  rows the probes trained on to the tables' sizes (`ProbePair.size_factor`), as the calibration's
  scaling assumes, since the probes read capped subsamples.
- Deterministic whatever the thread count: one torch thread inside the training (restored after),
  every random choice from seeded generators. A run is cached by the digest of its exact inputs, so
  the reference's run is trained once per check and dimensions 4 and 5 share the candidate's.

Both dimensions compare a measure of the two runs as `log_ratio` and draw them through `describe_pair`.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from dmas.quality.dimension import CheckContext
from dmas.quality.frame import QualityFrame

PROBE_ROWS = 3000  # training rows per side (seeded subsample; also at most context.max_rows)
HOLDOUT_ROWS = 1000  # reference rows held out from both trainings (at most a quarter of the reference)
MIN_ROWS = 20  # fewer usable rows on a side: no probe, statistics are NaN
STEPS = 100
BATCH = 128
HIDDEN = 32
SEEDS = 3  # ensemble members (independent initial weights and batch orders)
LEARNING_RATE = 1e-2
MAX_LEVELS = 10  # one-hot width per discrete column (commonest reference levels, then "other")
LIMIT = 1e6  # standardised values are clipped here: absurd values explode the gradients, not float32 (NaN)
LAYERS = ("layer1", "layer2", "output")
CACHE_SIZE = 16
TASK_ROWS = 5000  # reference rows the self-supervised task column is chosen on
FLOOR = 1e-12  # norms, losses and spreads are floored here before logs (an all-zero one is a finding, not NaN)
_SETTINGS = (PROBE_ROWS, HOLDOUT_ROWS, STEPS, BATCH, HIDDEN, SEEDS, LEARNING_RATE, MAX_LEVELS, LIMIT)


@dataclass(frozen=True)
class ProbeTask:
    """What the probe predicts (`column`, as regression or classification) from which `inputs`."""

    column: str
    kind: Literal["regression", "classification"]
    self_supervised: bool
    inputs: tuple[str, ...]

    def note(self) -> str:
        if self.self_supervised:
            return (f"no target column: the probe is self-supervised, predicting {self.column!r} "
                    f"({self.kind}) from the other {len(self.inputs)} column(s)")
        return f"the probe predicts the target {self.column!r} ({self.kind}) from {len(self.inputs)} column(s)"


@dataclass(frozen=True)
class ProbeRun:
    """One side's training: per-step minibatch loss [SEEDS, STEPS], per-layer gradient norms
    [SEEDS, STEPS, len(LAYERS)], each member's final loss on its training rows and on the held-out
    reference rows [SEEDS], and how much the members disagree on the held-out rows."""

    losses: np.ndarray
    gradient_norms: np.ndarray
    final_loss: np.ndarray
    holdout_loss: np.ndarray
    holdout_disagreement: float
    rows: int


@dataclass(frozen=True)
class ProbePair:
    """The same probe trained on the reference and on the candidate (None: too few usable rows)."""

    task: ProbeTask
    reference: ProbeRun | None
    candidate: ProbeRun | None
    holdout_rows: int

    @property
    def complete(self) -> bool:
        return self.reference is not None and self.candidate is not None

    def size_factor(self, n_candidate: int, n_reference: int) -> float:
        """How much smaller the tables' two-sample noise is than that of the rows the probes trained on
        (`dmas.quality.generalization.full_size_factor`); NaN when a side has no run."""
        if not self.complete:
            return float("nan")
        from dmas.quality.generalization import full_size_factor

        return full_size_factor(n_candidate, n_reference, self.candidate.rows, self.reference.rows)

    def describe(self) -> dict:
        """Sizes and settings for the report (what the probe was, on how many rows)."""
        return {"task": self.task.column, "task_kind": self.task.kind, "self_supervised": self.task.self_supervised,
                "inputs": list(self.task.inputs), "reference_rows": _rows(self.reference),
                "candidate_rows": _rows(self.candidate), "holdout_rows": self.holdout_rows, "steps": STEPS,
                "batch": BATCH, "seeds": SEEDS, "hidden": [HIDDEN, HIDDEN], "layers": list(LAYERS)}


def probe_task(reference: QualityFrame) -> ProbeTask | None:
    """The probe's task for this reference (None when there is nothing to predict from).

    Continuous columns without spread in the reference carry nothing to learn from and are left out."""
    constant = {name for name in reference.continuous() if _spread(reference.values[name]) == 0}
    if reference.target is not None:
        column, self_supervised = reference.target, False
    else:
        column, self_supervised = _self_supervised_column(reference, constant), True
        if column is None:
            return None
    inputs = tuple(name for name in reference.names if name != column and name not in constant)
    if not inputs:
        return None
    kind = "regression" if column in reference.continuous() else "classification"
    return ProbeTask(column, kind, self_supervised, inputs)


def train_pair(reference: QualityFrame, candidate: QualityFrame, context: CheckContext) -> ProbePair | None:
    """Train the probe on the reference and on the candidate, and evaluate both on held-out reference rows.

    Each side trains on at most min(PROBE_ROWS, context.max_rows) of its rows with a label (seeded
    subsample); None when the reference offers no task (see `probe_task`)."""
    task = probe_task(reference)
    if task is None:
        return None
    encoding = _Encoding(reference, task)
    ref_rows = context.rng("probe", "reference").permutation(encoding.usable(reference))
    holdout_size = min(HOLDOUT_ROWS, len(ref_rows) // 4)
    holdout, ref_train = ref_rows[:holdout_size], ref_rows[holdout_size:]
    cand_usable = encoding.usable(candidate)
    shared = min(len(ref_train), len(cand_usable))  # too few on one side: that side gets no run
    rows = min(PROBE_ROWS, context.max_rows, shared if shared >= MIN_ROWS else max(len(ref_train), len(cand_usable)))
    cand_train = context.rng("probe", "candidate").permutation(cand_usable)[:rows]
    ref_train = ref_train[:rows]
    x_ref, y_ref, centre = encoding.encode(reference, ref_train)
    x_holdout, y_holdout, _ = encoding.encode(reference, holdout, centre)
    x_cand, y_cand, _ = encoding.encode(candidate, cand_train)
    seed = int(context.rng("probe", "init").integers(2**62))
    runs = [_cached_run(x, y, x_holdout, y_holdout, task.kind, encoding.classes, seed)
            if len(y) >= MIN_ROWS and holdout_size >= MIN_ROWS else None
            for x, y in ((x_ref, y_ref), (x_cand, y_cand))]
    return ProbePair(task, runs[0], runs[1], holdout_size)


def log_ratio(value: float, base: float) -> float:
    """log(value / base) of one measure of the two runs, both floored at FLOOR; NaN when either is missing."""
    if not (np.isfinite(value) and np.isfinite(base)):
        return np.nan
    return float(np.log(max(value, FLOOR) / max(base, FLOOR)))


def describe_pair(pair: ProbePair | None, points: int,
                  curves: Callable[[ProbeRun, np.ndarray], dict[str, Any]]) -> dict[str, Any]:
    """A probe dimension's report details: what the probe was, notes, and `curves(run, steps)` of each side
    (keys prefixed "reference_", "candidate_") at `points` evenly spaced training steps, when both sides trained."""
    if pair is None:
        return {"notes": ["no probe: the table has no column to predict from the others"]}
    details: dict[str, Any] = {"probe": pair.describe(), "notes": [pair.task.note()]}
    if not pair.complete:
        details["notes"].append("too few usable rows on one side to train the probe: no statistics")
        return details
    every = np.linspace(0, STEPS - 1, min(STEPS, points)).astype(int)
    details["steps"] = [int(step) for step in every]
    for side in ("reference", "candidate"):
        details.update({f"{side}_{key}": value for key, value in curves(getattr(pair, side), every).items()})
    return details


def _rows(run: ProbeRun | None) -> int:
    return 0 if run is None else run.rows


def _self_supervised_column(reference: QualityFrame, constant: set[str]) -> str | None:
    """The continuous column with the highest mean |correlation| to the other continuous columns in the
    reference (first by name on ties; measured on `TASK_ROWS` evenly spaced rows); without continuous
    columns, the first discrete column with two levels present; None when there is neither."""
    continuous = [name for name in reference.continuous() if name not in constant]
    if len(continuous) >= 2:
        every = np.linspace(0, reference.n_rows - 1, min(reference.n_rows, TASK_ROWS)).astype(np.int64)  # distinct
        values = reference.take(every).matrix(continuous)
        filled = np.where(np.isfinite(values), values, [_mean(column) for column in values.T])
        spread = filled.std(axis=0)
        standard = (filled - filled.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
        correlation = np.abs(standard.T @ standard / len(standard))
        np.fill_diagonal(correlation, 0.0)
        return continuous[int(np.argmax(correlation.sum(axis=0)))]
    if continuous:
        return continuous[0]
    varied = [name for name in reference.discrete() if _levels_present(reference.values[name]) >= 2]
    return varied[0] if varied else None


class _Encoding:
    """How one task turns a frame's rows into probe inputs and labels, all fixed by the reference."""

    def __init__(self, reference: QualityFrame, task: ProbeTask):
        self.task = task
        continuous = set(reference.continuous())
        self.spread = {name: _spread(reference.values[name]) for name in task.inputs if name in continuous}
        self.slots = {name: _slots(reference.values[name], len(reference.levels.get(name, ())))
                      for name in task.inputs if name not in self.spread}
        if task.kind == "regression":
            self.target_spread, self.classes = _spread(reference.values[task.column]), 1
        else:
            self.target_slots = _slots(reference.values[task.column], len(reference.levels.get(task.column, ())))
            self.classes = int(self.target_slots.max()) + 1

    def usable(self, frame: QualityFrame) -> np.ndarray:
        """Row numbers whose label is present (and learnable: a continuous target with spread)."""
        target = frame.values[self.task.column]
        if self.task.kind == "regression":
            return np.flatnonzero(np.isfinite(target)) if self.target_spread > 0 else np.zeros(0, np.int64)
        return np.flatnonzero(target >= 0)

    def encode(self, frame: QualityFrame, rows: np.ndarray,
               centre: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """float32 inputs [rows, width], labels [rows], and the centres used (each side's own mean unless given)."""
        centre = dict(centre or {})
        blocks = []
        for name in self.task.inputs:
            values = frame.values[name][rows]
            if name in self.spread:
                if name not in centre:
                    centre[name] = _mean(values)
                scaled = np.clip((values - centre[name]) / self.spread[name], -LIMIT, LIMIT)
                blocks.append(np.where(np.isnan(scaled), 0.0, scaled)[:, None])  # missing: the centre
            else:
                blocks.append(_one_hot(self.slots[name], values))
        target = frame.values[self.task.column][rows]
        if self.task.kind == "regression":
            if self.task.column not in centre:
                centre[self.task.column] = _mean(target)
            labels = np.clip((target - centre[self.task.column]) / self.target_spread, -LIMIT, LIMIT).astype(np.float32)
        else:
            labels = self.target_slots[target].astype(np.int64)
        inputs = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(rows), 0))
        return np.ascontiguousarray(inputs, dtype=np.float32), labels, centre


def _spread(values: np.ndarray) -> float:
    """The reference's standard deviation of a continuous column (0 when constant or empty)."""
    finite = values[np.isfinite(values)]
    spread = float(finite.std()) if len(finite) > 1 else 0.0
    return spread if np.isfinite(spread) else 0.0


def _levels_present(codes: np.ndarray) -> int:
    return int(np.count_nonzero(np.bincount(codes[codes >= 0]))) if np.any(codes >= 0) else 0


def _mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else 0.0


def _slots(codes: np.ndarray, n_levels: int) -> np.ndarray:
    """slot[code]: the one-hot position of each level (commonest reference levels first, ties by code,
    the rest share one "other" slot); indexable by code, with code -1 (missing) mapped to -1."""
    counts = np.bincount(codes[codes >= 0], minlength=n_levels)
    order = np.argsort(-counts, kind="stable")
    slot = np.full(len(counts) + 1, -1, dtype=np.int64)  # last entry serves code -1
    kept = order[:MAX_LEVELS]
    slot[kept] = np.arange(len(kept))
    slot[order[MAX_LEVELS:]] = len(kept)
    return slot


def _one_hot(slot: np.ndarray, codes: np.ndarray) -> np.ndarray:
    width = int(slot.max()) + 1
    positions = slot[codes]
    block = np.zeros((len(codes), width))
    present = np.flatnonzero(positions >= 0)
    block[present, positions[present]] = 1.0
    return block


_cache: OrderedDict[str, ProbeRun] = OrderedDict()
_cache_lock = threading.Lock()
_torch_lock = threading.Lock()


def _cached_run(x: np.ndarray, y: np.ndarray, x_holdout: np.ndarray, y_holdout: np.ndarray, kind: str,
                classes: int, seed: int) -> ProbeRun:
    """`_train` of exactly these inputs, from a small cache keyed by their digest (training is
    deterministic, so a hit is the run training would give)."""
    digest = hashlib.sha256(repr((_SETTINGS, kind, classes, seed, x.shape, x_holdout.shape)).encode())
    for array in (x, y, x_holdout, y_holdout):
        digest.update(np.ascontiguousarray(array).tobytes())
    key = digest.hexdigest()
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    run = _train(x, y, x_holdout, y_holdout, kind, classes, seed)
    with _cache_lock:
        _cache[key] = run
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return run


@contextmanager
def _one_thread() -> Iterator[None]:
    """One intra-op torch thread for the block, the caller's setting after: every operation the probe
    uses is then deterministic on CPU, so the floats do not depend on how many cores there are.

    (`torch.use_deterministic_algorithms` adds nothing on CPU and imports torch's compiler stack, ~2 s
    cold.) The setting is process-wide, so trainings in concurrent threads take turns; otherwise one
    could save another's temporary setting and "restore" it."""
    with _torch_lock:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


def _train(x: np.ndarray, y: np.ndarray, x_holdout: np.ndarray, y_holdout: np.ndarray, kind: str,
           classes: int, seed: int) -> ProbeRun:
    """Train the SEEDS-member ensemble on (x, y) and record loss and per-layer gradient norms per step."""
    with _one_thread(), torch.no_grad():
        generator = torch.Generator().manual_seed(seed)
        probe = _Ensemble([x.shape[1], HIDDEN, HIDDEN, classes], generator)
        inputs, labels = torch.from_numpy(x), torch.from_numpy(y)
        batches = torch.randint(0, len(y), (STEPS, SEEDS, min(BATCH, len(y))), generator=generator)
        losses = torch.zeros(STEPS, SEEDS)
        squares = torch.zeros(STEPS, len(probe.params) * SEEDS)  # per step: each tensor's squared norm per member
        for step in range(STEPS):
            rows = batches[step]  # [SEEDS, batch]
            activations = probe.forward(inputs[rows])
            losses[step], error = _loss_and_error(activations[-1], labels[rows], kind)
            probe.backward(activations, error)
            squares[step].index_add_(0, probe.segments, probe.grad.square())
            probe.adam_step()
        per_tensor = squares.reshape(STEPS, len(LAYERS), 2, SEEDS).sum(dim=2).sqrt()  # weight + bias per layer
        final, _ = _loss_and_error(probe.forward(inputs.expand(SEEDS, -1, -1))[-1], labels.expand(SEEDS, -1), kind)
        predicted = probe.forward(torch.from_numpy(x_holdout).expand(SEEDS, -1, -1))[-1]
        held, _ = _loss_and_error(predicted, torch.from_numpy(y_holdout).expand(SEEDS, -1), kind)
        return ProbeRun(_frozen(losses.T), _frozen(per_tensor.permute(2, 0, 1)), _frozen(final), _frozen(held),
                        _disagreement(predicted, kind), len(y))


def _frozen(tensor: torch.Tensor) -> np.ndarray:
    """float64 copy, read-only: a cached run is shared by every caller that asks for it."""
    array = tensor.double().numpy().copy()
    array.setflags(write=False)
    return array


def _disagreement(output: torch.Tensor, kind: str) -> float:
    """Variance over members of what they predict for each held-out row (the value, or each class's
    probability summed over classes), averaged over rows: whether the seeds converged to one function."""
    predicted = output[..., 0] if kind == "regression" else torch.softmax(output, dim=-1)
    spread = predicted.double().var(dim=0)
    return float((spread if kind == "regression" else spread.sum(dim=-1)).mean())


class _Ensemble:
    """SEEDS independent MLPs (tanh hidden layers, linear output) evaluated as one batched model.

    Every weight [SEEDS, in, out] and bias [SEEDS, 1, out] is a view into one flat buffer, and so is
    its gradient, so Adam and the per-member gradient norms are a few whole-buffer operations per step.
    Gradients are written out rather than taken by autograd: the same numbers at a fraction of the
    per-step overhead, which is what a probe trained 60+ times per check costs."""

    def __init__(self, widths: list[int], generator: torch.Generator):
        shapes = [shape for fan_in, fan_out in zip(widths[:-1], widths[1:])
                  for shape in ((SEEDS, fan_in, fan_out), (SEEDS, 1, fan_out))]
        sizes = [int(np.prod(shape)) for shape in shapes]
        self.flat, self.grad = torch.zeros(sum(sizes)), torch.zeros(sum(sizes))
        self.params = _views(self.flat, shapes, sizes)
        self.grads = _views(self.grad, shapes, sizes)
        for weight, (_, fan_in, _) in zip(self.params[0::2], shapes[0::2]):
            bound = 1.0 / np.sqrt(max(fan_in, 1))
            weight.copy_((torch.rand(weight.shape, generator=generator) * 2.0 - 1.0) * bound)
        # segment of each flat entry: (tensor, member), to sum squared gradients per member in one pass
        self.segments = torch.cat([torch.arange(index * SEEDS, (index + 1) * SEEDS).repeat_interleave(size // SEEDS)
                                   for index, size in enumerate(sizes)])
        self.first, self.second, self.steps = torch.zeros_like(self.flat), torch.zeros_like(self.flat), 0

    def forward(self, inputs: torch.Tensor) -> list[torch.Tensor]:
        """The inputs [SEEDS, rows, width] and each layer's output [SEEDS, rows, width]."""
        activations = [inputs]
        for layer in range(len(LAYERS)):
            output = torch.baddbmm(self.params[2 * layer + 1], activations[-1], self.params[2 * layer])
            activations.append(torch.tanh(output) if layer < len(LAYERS) - 1 else output)
        return activations

    def backward(self, activations: list[torch.Tensor], error: torch.Tensor) -> None:
        """Fill `grad` from the loss gradient at the output (each member its own mean-loss gradient)."""
        for layer in reversed(range(len(LAYERS))):
            torch.bmm(activations[layer].transpose(1, 2), error, out=self.grads[2 * layer])
            torch.sum(error, dim=1, keepdim=True, out=self.grads[2 * layer + 1])
            if layer:  # through tanh: d tanh = 1 - tanh^2
                hidden = activations[layer]
                error = torch.bmm(error, self.params[2 * layer].transpose(1, 2))
                error.addcmul_(error * hidden, hidden, value=-1.0)

    def adam_step(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        """Adam (Kingma & Ba) on the flat buffer: elementwise, so members stay independent."""
        self.steps += 1
        self.first.lerp_(self.grad, 1.0 - beta1)
        self.second.mul_(beta2).addcmul_(self.grad, self.grad, value=1.0 - beta2)
        denominator = (self.second / (1.0 - beta2**self.steps)).sqrt_().add_(eps)
        self.flat.addcdiv_(self.first, denominator, value=-LEARNING_RATE / (1.0 - beta1**self.steps))


def _views(buffer: torch.Tensor, shapes: list[tuple[int, ...]], sizes: list[int]) -> list[torch.Tensor]:
    return [part.view(shape) for part, shape in zip(torch.split(buffer, sizes), shapes)]


def _loss_and_error(output: torch.Tensor, labels: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Each member's mean loss [SEEDS] and its gradient with respect to `output` [SEEDS, rows, classes].

    Regression: squared error in reference standard deviations; classification: cross-entropy."""
    rows = output.shape[1]
    if kind == "regression":
        residual = output[..., 0] - labels
        return residual.square().mean(dim=1), (residual * (2.0 / rows)).unsqueeze(-1)
    log_p = torch.log_softmax(output, dim=-1)
    picked = log_p.gather(-1, labels.unsqueeze(-1))
    error = log_p.exp()
    error.scatter_add_(-1, labels.unsqueeze(-1), torch.full_like(picked, -1.0))
    return -picked[..., 0].mean(dim=1), error / rows
