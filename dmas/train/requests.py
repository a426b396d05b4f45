"""Training requests over HTTP, in the original stack's forms and dmas' own, turned into one TrainConfig.

Accepted bodies: none or `{}`; the flat form (TrainConfig fields at the top level, such as the
original `{"epochs": 100, "batch_size": 32, "learning_rate": 0.001, "seed": 1234}`); the wrapped
form `{"config": {...}}` (both may be combined if they do not contradict each other); and the
original top-level `max_neighbors` / `max_artifacts_per_entity`, which are `tensorize.*` here.

Epochs: a request that does not set `epochs` trains `REQUEST_DEFAULT_EPOCHS` = 3, the original
API's default, whatever its form, so a bare `POST /train` answers in seconds as it did. The 30 of
`TrainConfig` stays the default of `dmas train` and `configs/train.yaml`.

Keys the original API accepted but dmas has no use for are accepted and returned as `ignored`. Any
other unknown key is a ConfigError naming it: a misspelt setting must not silently train a
different model than the one asked for.
"""

from __future__ import annotations

import difflib

from pydantic import ValidationError

from dmas.errors import ConfigError
from dmas.train.config import TrainConfig

REQUEST_DEFAULT_EPOCHS = 3
ORIGINAL_TENSORIZE_KEYS = ("max_neighbors", "max_artifacts_per_entity")
# original request keys with no dmas training equivalent, and why each is safe to ignore here
IGNORED_ORIGINAL_KEYS = {
    "idempotency_key": "the original async routes' de-duplication key; the job layer reads it, "
                       "it does not shape the model",
}


def train_config_from_request(body: dict | None) -> tuple[TrainConfig, list[str]]:
    """(the TrainConfig a /train body asks for, the original-API keys it carried that were ignored)."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ConfigError(f"a training request is a JSON object of settings, not {type(body).__name__}")
    top = dict(body)
    wrapped = top.pop("config", None)
    if wrapped is None:
        wrapped = {}
    if not isinstance(wrapped, dict):
        raise ConfigError(f"'config' must be a JSON object of training settings, not {type(wrapped).__name__}")
    ignored = sorted({key for key in (*top, *wrapped) if key in IGNORED_ORIGINAL_KEYS})
    values = _merge(_lifted(wrapped), _lifted(top), "")
    values.setdefault("epochs", REQUEST_DEFAULT_EPOCHS)
    _refuse_unknown(values)
    try:
        return TrainConfig.model_validate(values), ignored
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, error['loc'])) or 'body'}: {error['msg']}"
                             for error in exc.errors())
        raise ConfigError(f"invalid training settings: {problems}") from None


def _lifted(part: dict) -> dict:
    """`part` without ignored keys, the original top-level tensorize keys moved under `tensorize`."""
    values = {key: value for key, value in part.items()
              if key not in IGNORED_ORIGINAL_KEYS and key not in ORIGINAL_TENSORIZE_KEYS}
    original = {key: part[key] for key in ORIGINAL_TENSORIZE_KEYS if key in part}
    if original:
        tensorize = values.get("tensorize", {})
        if not isinstance(tensorize, dict):
            raise ConfigError("'tensorize' must be a JSON object of settings")
        values["tensorize"] = _merge(tensorize, original, "tensorize.")
    return values


def _merge(first: dict, second: dict, prefix: str) -> dict:
    """Both dicts in one; a key given twice must have the same value (nested objects are merged)."""
    merged = dict(first)
    for key, value in second.items():
        if key not in merged:
            merged[key] = value
        elif isinstance(merged[key], dict) and isinstance(value, dict):
            merged[key] = _merge(merged[key], value, f"{prefix}{key}.")
        elif merged[key] != value:
            raise ConfigError(f"'{prefix}{key}' is given twice with different values ({merged[key]!r} and "
                              f"{value!r}); give it once")
    return merged


def _refuse_unknown(values: dict) -> None:
    """A ConfigError naming every top-level key that is no training setting, with the likely intended one."""
    known = sorted(TrainConfig.model_fields)
    unknown = sorted(key for key in values if key not in TrainConfig.model_fields)
    if not unknown:
        return
    named = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), known, n=1)
        named.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    raise ConfigError(f"unknown training setting{'s' if len(unknown) > 1 else ''}: {', '.join(named)}; "
                      f"known settings: {', '.join(known)}")
