"""One proxy run: train a next-token SequenceModel on a data fraction, record its dynamics, score it.

The same function trains a run in a Ray Train worker or in this process, so where a run trains never
changes its bytes on the CPU. A run's randomness comes only from its seed: initial weights, the
order of its windows each epoch. Its record holds the loss curve (one mean per `record_every`
steps), the gradient norm of each layer at the same records (before clipping: what the dynamics
flags read), the validation loss (mean next-token cross-entropy in nats over the held-out windows)
and the sha256 of its final weights.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass

import numpy as np
import torch
from safetensors.torch import save as save_safetensors
from torch import nn

from dmas.cascade.config import CascadeConfig, ModelShape
from dmas.cascade.data import TokenWindows
from dmas.model.sequence import SequenceModel
from dmas.train.determinism import seed_everything

VALIDATION_BATCH = 64


@dataclass(frozen=True)
class ProxySpec:
    """What one run trains: its tier, its place in the tier, a model shape, a data fraction and a seed."""

    tier: str
    index: int
    d_model: int
    n_layers: int
    fraction: float
    seed: int

    @property
    def name(self) -> str:
        return f"{self.tier}-{self.index:02d}"

    @property
    def shape(self) -> ModelShape:
        return ModelShape(d_model=self.d_model, n_layers=self.n_layers)


@dataclass(frozen=True)
class ProxyResult:
    """A finished run. `seconds` and `device` describe the execution; everything else is its bytes."""

    spec: ProxySpec
    parameters: int
    steps: int
    tokens_seen: int
    loss_curve: list[float]
    gradient_norms: dict[str, list[float]]
    validation_loss: float
    weights_sha256: str
    bf16: bool
    gradient_checkpointing: bool
    seconds: float
    device: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict) -> ProxyResult:
        return cls(**{**value, "spec": ProxySpec(**value["spec"])})


def steps_for(config: CascadeConfig, train_rows: int) -> int:
    """Optimiser steps of a run that reads `train_rows` windows for the configured epochs."""
    return math.ceil(train_rows / config.schedule.batch_size) * config.schedule.epochs


def tokens_for(config: CascadeConfig, train_rows: int) -> int:
    """Target tokens a run reads: its windows times epochs times the window length (D of the scaling law)."""
    return train_rows * config.schedule.epochs * config.model.seq_len


def parameter_count(config: CascadeConfig, shape: ModelShape, vocab_size: int) -> int:
    """N of the scaling law: every parameter of the model (the tied embedding counted once), built on the
    meta device so even the GPU sizes are counted without memory."""
    with torch.device("meta"):
        model = SequenceModel(config.model_size(shape, vocab_size))
    return sum(parameter.numel() for parameter in model.parameters())


def run_seed(config: CascadeConfig, spec: ProxySpec) -> int:
    """The run's seed: the cascade's seed and the run's own (two runs with the same seeds start alike)."""
    return int(np.random.SeedSequence([config.seed, spec.seed]).generate_state(1)[0])


def train_proxy(spec: ProxySpec, config: CascadeConfig, windows: TokenWindows, *,
                device: torch.device | None = None,
                on_step: Callable[[int, int, float], None] = lambda step, steps, loss: None) -> ProxyResult:
    """Train and score one run; `on_step(step, steps, latest_loss)` is called at each record (progress)."""
    started = time.perf_counter()
    device = device or torch.device("cpu")
    seed = run_seed(config, spec)
    seed_everything(seed, deterministic=device.type == "cpu")
    schedule, execution = config.schedule, config.execution
    bf16 = execution.bf16 and device.type == "cuda"
    model = SequenceModel(config.model_size(spec.shape, windows.vocab_size), config.model.dropout,
                          gradient_checkpointing=execution.gradient_checkpointing).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=schedule.learning_rate, weight_decay=schedule.weight_decay)
    rows = windows.train_rows(spec.fraction)
    data = torch.from_numpy(windows.train[:rows]).to(device)
    steps = steps_for(config, rows)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _learning_rate_shape(config, steps))
    groups = _layer_groups(model)
    curve: list[float] = []
    norms: dict[str, list[float]] = {name: [] for name in groups}
    pending: list[torch.Tensor] = []
    step = 0
    model.train()
    for epoch in range(schedule.epochs):
        order = torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(rows)).to(device)
        for start in range(0, rows, schedule.batch_size):
            batch = data[order[start:start + schedule.batch_size]]
            with _autocast(device, bf16):
                logits = model(batch[:, :-1])
            loss = nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            pending.append(loss.detach())
            step += 1
            if step % schedule.record_every == 0 or step == steps:
                for name, parameters in groups.items():
                    norms[name].append(gradient_norm(parameters))
                curve.append(float(torch.stack(pending).mean()))
                pending.clear()
                on_step(step, steps, curve[-1])
            if schedule.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), schedule.grad_clip)
            optimizer.step()
            scheduler.step()
    validation = validation_loss(model, windows.validation, device, bf16)
    return ProxyResult(spec=spec, parameters=sum(p.numel() for p in model.parameters()), steps=steps,
                       tokens_seen=tokens_for(config, rows), loss_curve=curve, gradient_norms=norms,
                       validation_loss=validation, weights_sha256=weights_sha256(model), bf16=bf16,
                       gradient_checkpointing=execution.gradient_checkpointing,
                       seconds=time.perf_counter() - started, device=device.type)


@torch.no_grad()
def validation_loss(model: SequenceModel, validation: np.ndarray, device: torch.device, bf16: bool) -> float:
    """Mean next-token cross-entropy (nats) over every held-out target token; fixed batches."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(validation), VALIDATION_BATCH):
        batch = torch.from_numpy(validation[start:start + VALIDATION_BATCH]).to(device)
        with _autocast(device, bf16):
            logits = model(batch[:, :-1])
        total += float(nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                                   batch[:, 1:].reshape(-1), reduction="sum"))
        count += batch[:, 1:].numel()
    return total / count


def weights_sha256(model: nn.Module) -> str:
    """sha256 of the weights as safetensors bytes (sorted names): same weights, same digest."""
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in sorted(model.state_dict().items())}
    return hashlib.sha256(save_safetensors(state)).hexdigest()


def _learning_rate_shape(config: CascadeConfig, steps: int) -> Callable[[int], float]:
    """Linear warmup over `warmup_share` of the steps, then cosine decay to `min_learning_rate_ratio`."""
    schedule = config.schedule
    warmup = max(1, round(schedule.warmup_share * steps)) if schedule.warmup_share else 0
    floor = schedule.min_learning_rate_ratio

    def shape(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return shape


def _layer_groups(model: SequenceModel) -> dict[str, list[nn.Parameter]]:
    """The layers whose gradient norms are recorded: the token embedding, each block, the final norm."""
    groups = {"token_embedding": list(model.token.parameters())}
    for index, block in enumerate(model.blocks):
        groups[f"block_{index}"] = list(block.parameters())
    groups["final_norm"] = list(model.ln_f.parameters())
    return groups


def gradient_norm(parameters: list[nn.Parameter]) -> float:
    """The L2 norm of these parameters' gradients together (0 when none has one)."""
    grads = [p.grad.detach().float() for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))


def _autocast(device: torch.device, bf16: bool):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
