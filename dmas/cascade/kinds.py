"""The two kinds of data a cascade runs on, behind one interface the planner, executors and report use.

    data = load_cascade_data(config)          # SequenceProxies (token windows) or EntityRows (the store)
    data.train(spec, config, on_step=...)     # one proxy run -> ProxyResult

`CascadeData` is what a kind provides: how many training rows a data fraction reads, the steps and
rows-seen (D of the scaling law) of a run, a run's parameter count (N), the report's description of
the data and of the shared model/schedule settings, and the training of one run. A value of either
kind is picklable, so the Ray Train executor hands it to its workers as one object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from dmas.cascade.config import CascadeConfig, EntityData, ModelShape
from dmas.cascade.data import TokenWindows, load_windows
from dmas.cascade.entities import load_entity_rows
from dmas.cascade.proxy import ProxyResult, ProxySpec, parameter_count, steps_for, tokens_for, train_proxy
from dmas.config import Settings, load_settings

StepSink = Callable[[int, int, float], None]


class CascadeData(Protocol):
    """One kind of data and its proxies: what planning, executing and reporting a cascade ask of it."""

    kind: str

    def train_rows(self, fraction: float) -> int: ...
    def describe(self) -> dict: ...
    def report_settings(self, config: CascadeConfig) -> dict: ...
    def steps(self, config: CascadeConfig, train_rows: int) -> int: ...
    def seen(self, config: CascadeConfig, train_rows: int) -> int: ...
    def parameters(self, config: CascadeConfig, shape: ModelShape) -> int: ...
    def train(self, spec: ProxySpec, config: CascadeConfig, *, device: torch.device | None = None,
              on_step: StepSink = ...) -> ProxyResult: ...


@dataclass(frozen=True, eq=False)
class SequenceProxies:
    """Token windows and next-token SequenceModel proxies (`dmas.cascade.proxy`)."""

    windows: TokenWindows
    kind = "sequence"

    def train_rows(self, fraction: float) -> int:
        return self.windows.train_rows(fraction)

    def describe(self) -> dict:
        return self.windows.describe()

    def report_settings(self, config: CascadeConfig) -> dict:
        return {"model": config.model.model_dump(mode="json"), "schedule": config.schedule.model_dump(mode="json")}

    def steps(self, config: CascadeConfig, train_rows: int) -> int:
        return steps_for(config, train_rows)

    def seen(self, config: CascadeConfig, train_rows: int) -> int:
        return tokens_for(config, train_rows)

    def parameters(self, config: CascadeConfig, shape: ModelShape) -> int:
        return parameter_count(config, shape, self.windows.vocab_size)

    def train(self, spec: ProxySpec, config: CascadeConfig, *, device: torch.device | None = None,
              on_step: StepSink = lambda step, steps, loss: None) -> ProxyResult:
        return train_proxy(spec, config, self.windows, device=device, on_step=on_step)


def load_cascade_data(config: CascadeConfig, *, settings: Settings | None = None,
                      windows: TokenWindows | None = None) -> CascadeData:
    """The config's data, read once: token windows (given, or cut from `data`), or the store's entities
    (`data.store`, else the store of `settings`, else of the environment's settings)."""
    if isinstance(config.data, EntityData):
        if windows is not None:
            raise TypeError("windows are sequence data; this cascade's data is the store's entities")
        return load_entity_rows(config.data, settings or load_settings())
    return SequenceProxies(windows or load_windows(config.data, config.model.seq_len))
