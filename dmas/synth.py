"""Deterministic synthetic data: the tables and media files a new dmas user would ingest.

Generative story (all draws from `SeedSequence(seed)` sub-streams, so the same seed and options
give byte-identical files):

- Every entity has five independent standard-normal latents: three *attribute* latents z1..z3,
  seen (noisily, partly non-linearly) through `age, tenure_months, income, sessions_per_week,
  credit_score` (`household_size` is a pure distractor); an *event level* E; an *event trend* T;
  and a *media* latent M. A = standardised (0.6 z1 + 0.5 z2 + 0.6 z3) is the attribute score.
- Events: E raises the share and size of `purchase` events; T tilts each entity's event times
  towards the end (T > 0) or the start (T < 0) of the 180-day window from 2024-01-01T00:00:00Z.
  15 % of entities report event and interaction times in a local offset (`+05:30`, ...), not `Z`.
- Interactions: each entity sends `interactions_per_entity` interactions to uniformly drawn others;
  G = standardised mean of A over the entity's neighbours (both directions) is the graph signal.
- Media: M sets image brightness, audio tone pitch and video motion speed (hue, texture, loudness,
  colours are noise). "Stock" images and a shared jingle carry no signal and are byte-identical.
- Targets: target_regression = A + 0.8 E + 0.7 G + 0.8 M + 0.3 noise;
  target_binary = 1 when target_regression + 0.5 noise is in its top 40 %;
  target_ranking = grade 0..4 (quantiles 30/55/75/90 %) of 0.6 A + 1.0 T + 0.6 G + 0.7 M + 0.4 noise.
  E, T, G and M are independent of the attributes, so events, the graph and media each add
  accuracy that attributes alone cannot reach.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from dmas import synth_media
from dmas.errors import ConfigError
from dmas.vocabulary import ARTIFACT_TYPES

logger = logging.getLogger(__name__)

EPOCH = np.datetime64("2024-01-01T00:00:00", "s")
WINDOW_SECONDS = 180 * 24 * 3600
EVENT_TYPES = ("login", "purchase", "payment", "support_call", "refund")
INTERACTION_TYPES = ("message", "transfer", "referral")
_EXTENSIONS = {"png": "png", "jpeg": "jpg"}
# Offsets (minutes) an entity's clock may report in; index 0 is UTC, written with a "Z".
TZ_OFFSETS_MINUTES = (0, 120, -300, 330, 540, -480)
_LOCAL_TIME_FRACTION = 0.15
_STOCK_IMAGES = 4
_CHUNK_ENTITIES = 20_000  # events are drawn per fixed-size chunk of entities: bounded memory, same bytes

# Sub-stream keys: SeedSequence(seed, spawn_key=(stream, ...)) gives independent generators.
_LATENTS, _ATTRIBUTES, _EVENTS, _INTERACTIONS, _TARGETS, _MEDIA_PLAN, _IMAGE, _AUDIO, _VIDEO = range(9)


@dataclass(frozen=True)
class SynthResult:
    """Where `generate` wrote its files and how many rows and media files each holds."""

    out_dir: Path
    entities_path: Path
    events_path: Path
    interactions_path: Path
    artifacts_path: Path
    n_entities: int
    n_events: int
    n_interactions: int
    artifacts_by_type: Mapping[str, int]
    n_duplicate_media: int  # media files whose bytes equal an earlier file's (files minus distinct blobs)
    n_bytes: int

    def to_dict(self) -> dict:
        """JSON-able: paths as strings, counts as plain numbers."""
        return {name: str(value) if isinstance(value, Path) else dict(value) if isinstance(value, Mapping) else value
                for name, value in vars(self).items()}


@dataclass(frozen=True)
class _Latents:
    """Per-entity hidden factors, shape (n,) each; see the module docstring."""

    z: np.ndarray  # (n, 3) attribute latents
    attr_score: np.ndarray
    event_level: np.ndarray
    event_trend: np.ndarray
    media: np.ndarray
    tz_index: np.ndarray  # index into TZ_OFFSETS_MINUTES of each entity's reporting clock


@dataclass(frozen=True)
class _Options:
    """The validated arguments of `generate`."""

    n_entities: int
    seed: int
    events_per_entity: int
    interactions_per_entity: int
    fractions: Mapping[str, float]  # artifact type -> share of entities that have one
    duplicate_fraction: float

    def __post_init__(self) -> None:
        """Reject options that cannot give a sensible dataset, naming the option."""
        if self.n_entities < 1:
            raise ConfigError(f"n_entities must be >= 1, got {self.n_entities}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        if self.events_per_entity < 0:
            raise ConfigError(f"events_per_entity must be >= 0, got {self.events_per_entity}")
        if self.interactions_per_entity < 0 or (self.interactions_per_entity > 0 and self.n_entities < 2):
            raise ConfigError(f"interactions_per_entity={self.interactions_per_entity} needs >= 0 and, when > 0, "
                              f"n_entities >= 2 (got {self.n_entities})")
        named = {f"{kind}_fraction": value for kind, value in self.fractions.items()}
        for name, value in {**named, "duplicate_fraction": self.duplicate_fraction}.items():
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {value}")


def generate(
    out_dir: str | os.PathLike,
    *,
    n_entities: int = 300,
    seed: int = 0,
    events_per_entity: int = 20,
    interactions_per_entity: int = 3,
    image_fraction: float = 1.0,
    audio_fraction: float = 0.5,
    video_fraction: float = 0.1,
    duplicate_fraction: float = 0.05,
) -> SynthResult:
    """Write entities, events, interactions, media and the artifact manifest into `out_dir`.

    `out_dir` must not exist or be empty. Files are written into a sibling folder that is renamed
    into place at the end, so a crash never leaves a partial dataset under the final name.
    """
    options = _Options(n_entities, seed, events_per_entity, interactions_per_entity,
                       {"image": image_fraction, "audio": audio_fraction, "video": video_fraction},
                       duplicate_fraction)
    final = Path(out_dir)
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise ConfigError(f"out_dir {final} exists and is not an empty folder; choose a new folder")
    staging = final.parent / f".{final.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "media").mkdir(parents=True)
    try:
        counts = _write_dataset(staging, options)
        n_bytes = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
        if final.exists():
            final.rmdir()
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result = SynthResult(out_dir=final, entities_path=final / "entities.csv", events_path=final / "events.csv",
                         interactions_path=final / "interactions.csv", artifacts_path=final / "artifacts.csv",
                         n_bytes=n_bytes, **counts)
    logger.info("synthetic dataset written", extra={"out_dir": str(final), "n_entities": n_entities,
                                                    "n_events": result.n_events, "n_bytes": n_bytes})
    return result


def _write_dataset(folder: Path, options: _Options) -> dict:
    """Write every file into `folder` (manifest last) and return the counts for `SynthResult`."""
    n, seed = options.n_entities, options.seed
    ids = _entity_ids(n)
    latents = _draw_latents(n, seed)
    src, dst = _draw_edges(n, seed, options.interactions_per_entity)
    graph = _neighbour_mean(latents.attr_score, src, dst)
    events = _event_chunks(ids, latents, seed, options.events_per_entity)
    n_events = _write_csv(folder / "events.csv", events, "%.4f")
    interactions = iter([_interaction_frame(ids, latents, src, dst, seed)])
    n_interactions = _write_csv(folder / "interactions.csv", interactions, "%.4f")
    _write_csv(folder / "entities.csv", iter([_entity_frame(ids, latents, graph, seed)]), "%.6f")
    plan = _plan_media(latents, seed, options.fractions, options.duplicate_fraction)
    manifest, duplicates = _write_media(folder, ids, plan, seed)
    _write_csv(folder / "artifacts.csv", iter([manifest]), "%.6f")
    by_type = {kind: int(plan.has[kind].sum()) for kind in ARTIFACT_TYPES}
    return {"n_entities": n, "n_events": n_events, "n_interactions": n_interactions,
            "artifacts_by_type": MappingProxyType(by_type), "n_duplicate_media": duplicates}


def _rng(seed: int, stream: int, *keys: int) -> np.random.Generator:
    """An independent generator for one named sub-stream (and optional chunk/entity keys)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream, *keys)))


def _entity_ids(n: int) -> np.ndarray:
    """Zero-padded ids (`ent_000042`) that sort in generation order."""
    width = max(6, len(str(n - 1)))
    return np.array([f"ent_{i:0{width}d}" for i in range(n)], dtype=object)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Squash to (0, 1)."""
    return 1.0 / (1.0 + np.exp(-x))


def _draw_latents(n: int, seed: int) -> _Latents:
    """Draw the hidden per-entity factors of the generative story."""
    rng = _rng(seed, _LATENTS)
    z = rng.standard_normal((n, 3))
    hidden = rng.standard_normal((n, 3))
    local = rng.random(n) < _LOCAL_TIME_FRACTION
    tz_index = np.where(local, rng.integers(1, len(TZ_OFFSETS_MINUTES), size=n), 0)
    weights = np.array([0.6, 0.5, 0.6])
    return _Latents(z=z, attr_score=z @ weights / np.linalg.norm(weights), event_level=hidden[:, 0],
                    event_trend=hidden[:, 1], media=hidden[:, 2], tz_index=tz_index)


def _draw_edges(n: int, seed: int, per_entity: int) -> tuple[np.ndarray, np.ndarray]:
    """Source and destination indices: `per_entity` interactions from each entity to uniform others."""
    rng = _rng(seed, _INTERACTIONS)
    src = np.repeat(np.arange(n), per_entity)
    dst = (src + 1 + rng.integers(0, max(n - 1, 1), size=src.size)) % n  # never a self-loop
    return src, dst


def _neighbour_mean(score: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Standardised mean of `score` over each entity's neighbours in both directions (0 if none)."""
    n = score.size
    total = np.bincount(src, score[dst], minlength=n) + np.bincount(dst, score[src], minlength=n)
    degree = np.bincount(src, minlength=n) + np.bincount(dst, minlength=n)
    mean = np.divide(total, degree, out=np.zeros(n), where=degree > 0)
    spread = mean.std()
    return (mean - mean.mean()) / spread if spread > 0 else np.zeros(n)


def _format_timestamps(seconds: np.ndarray, tz_index: np.ndarray) -> np.ndarray:
    """ISO-8601 strings of instants `seconds` after EPOCH, in each row's clock offset ("Z" for UTC)."""
    offsets = np.asarray(TZ_OFFSETS_MINUTES)[tz_index]
    local = EPOCH + (seconds + offsets * 60).astype("timedelta64[s]")
    suffixes = np.array(["Z"] + [f"{'+' if m > 0 else '-'}{abs(m) // 60:02d}:{abs(m) % 60:02d}"
                                 for m in TZ_OFFSETS_MINUTES[1:]])
    return np.char.add(np.datetime_as_string(local, unit="s"), suffixes[tz_index]).astype(object)


def _event_chunks(ids: np.ndarray, latents: _Latents, seed: int, per_entity: int) -> Iterator[pd.DataFrame]:
    """Events per fixed-size chunk of entities, sorted by entity then time."""
    for chunk, start in enumerate(range(0, ids.size, _CHUNK_ENTITIES)):
        rows = slice(start, min(start + _CHUNK_ENTITIES, ids.size))
        yield _event_frame(ids[rows], latents.event_level[rows], latents.event_trend[rows],
                           latents.tz_index[rows], _rng(seed, _EVENTS, chunk), per_entity)


def _event_frame(ids: np.ndarray, level: np.ndarray, trend: np.ndarray, tz_index: np.ndarray,
                 rng: np.random.Generator, per_entity: int) -> pd.DataFrame:
    """Events of some entities: E drives purchase share and size, T tilts event times."""
    owner = np.repeat(np.arange(ids.size), rng.poisson(per_entity, size=ids.size))
    m = owner.size
    u_type, u_time, noise = rng.random(m), rng.random(m), rng.standard_normal(m)
    other = rng.choice([0, 2, 3, 4], size=m, p=[0.45, 0.3, 0.13, 0.12])
    kind = np.where(u_type < _sigmoid(-0.7 + 0.9 * level[owner]), 1, other)
    log_value = np.select(
        [kind == 0, kind == 1, kind == 2, kind == 3],
        [2.0 + 0.5 * noise, 3.5 + 0.6 * level[owner] + 0.25 * noise, 4.0 + 0.3 * noise, 1.5 + 0.6 * noise],
        default=3.0 + 0.4 * noise,  # refund
    )
    fraction = u_time ** np.exp(-0.8 * trend[owner])  # density ~ x**(a-1): recent-heavy when T > 0
    seconds = np.minimum((fraction * WINDOW_SECONDS).astype(np.int64), WINDOW_SECONDS - 1)
    order = np.lexsort((seconds, owner))
    owner, kind, seconds, value = owner[order], kind[order], seconds[order], np.exp(log_value[order])
    return pd.DataFrame({
        "entity_id": ids[owner],
        "timestamp": _format_timestamps(seconds, tz_index[owner]),
        "event_type": np.asarray(EVENT_TYPES, dtype=object)[kind],
        "event_value": value.round(4),
    })


def _interaction_frame(ids: np.ndarray, latents: _Latents, src: np.ndarray, dst: np.ndarray,
                       seed: int) -> pd.DataFrame:
    """Interactions along the drawn edges; type, value and time are noise."""
    rng = _rng(seed, _INTERACTIONS, 1)
    kind = rng.choice(len(INTERACTION_TYPES), size=src.size, p=[0.6, 0.3, 0.1])
    value = np.where(kind == 1, np.exp(3.0 + 0.8 * rng.standard_normal(src.size)), rng.integers(1, 20, src.size))
    seconds = rng.integers(0, WINDOW_SECONDS, size=src.size)
    return pd.DataFrame({
        "src_entity_id": ids[src],
        "dst_entity_id": ids[dst],
        "interaction_type": np.asarray(INTERACTION_TYPES, dtype=object)[kind],
        "interaction_value": value.astype(float).round(4),
        "timestamp": _format_timestamps(seconds, latents.tz_index[src]),
    })


def _targets(latents: _Latents, graph: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """The three labels of the generative story."""
    rng = _rng(seed, _TARGETS)
    noise = rng.standard_normal((latents.media.size, 3))
    regression = (latents.attr_score + 0.8 * latents.event_level + 0.7 * graph + 0.8 * latents.media
                  + 0.3 * noise[:, 0])
    noisy = regression + 0.5 * noise[:, 1]
    binary = (noisy > np.quantile(noisy, 0.6)).astype(np.int64)
    ranking_score = (0.6 * latents.attr_score + 1.0 * latents.event_trend + 0.6 * graph + 0.7 * latents.media
                     + 0.4 * noise[:, 2])
    grade = np.searchsorted(np.quantile(ranking_score, [0.3, 0.55, 0.75, 0.9]), ranking_score, side="right")
    return {"target_regression": regression.round(6), "target_binary": binary, "target_ranking": grade}


def _entity_frame(ids: np.ndarray, latents: _Latents, graph: np.ndarray, seed: int) -> pd.DataFrame:
    """Entities with their attributes and targets as one compact, key-sorted JSON object each."""
    rng = _rng(seed, _ATTRIBUTES)
    n = ids.size
    z1, z2, z3 = latents.z.T
    noise = rng.standard_normal((n, 5))
    columns = {
        "age": np.clip(np.round(42 + 13 * z1 + 4 * noise[:, 0]), 18, 90).astype(np.int64),
        "tenure_months": np.clip(np.round(30 + 20 * z1 + 15 * noise[:, 1]), 0, 240).astype(np.int64),
        "income": np.exp(10.6 + 0.45 * z2 + 0.15 * noise[:, 2]).round(2),
        "sessions_per_week": np.exp(1.2 + 0.35 * z2 - 0.2 * z3 + 0.25 * noise[:, 3]).round(3),
        "credit_score": np.clip(np.round(660 + 55 * z3 + 25 * noise[:, 4]), 300, 850).astype(np.int64),
        "household_size": np.minimum(1 + rng.poisson(1.3, size=n), 8),
        **_targets(latents, graph, seed),
    }
    keys = sorted(columns)
    rows = zip(*(columns[k].tolist() for k in keys))
    attributes = [json.dumps(dict(zip(keys, row)), separators=(",", ":")) for row in rows]
    return pd.DataFrame({"entity_id": ids, "attributes": attributes})


@dataclass(frozen=True)
class _MediaPlan:
    """Which media each entity has and how each file is drawn; arrays of shape (n,) unless noted."""

    has: Mapping[str, np.ndarray]  # artifact type -> bool mask
    signal: np.ndarray  # the [0, 1] value the renderers make visible: a noisy squashing of M
    jpeg: np.ndarray  # bool: a camera image is saved as JPEG rather than PNG
    stock_image: np.ndarray  # index of the shared stock image used instead, -1 for none
    jingle: np.ndarray  # bool: the shared jingle replaces the entity's own tone
    seconds: np.ndarray  # (n, 3) capture time of the image, audio, video after EPOCH


def _plan_media(latents: _Latents, seed: int, fractions: Mapping[str, float], duplicate_fraction: float) -> _MediaPlan:
    """Draw, vectorised, every per-entity media choice before any file is written."""
    rng = _rng(seed, _MEDIA_PLAN)
    n = latents.media.size
    u = rng.random((n, 5))
    return _MediaPlan(
        has={kind: u[:, k] < fractions[kind] for k, kind in enumerate(ARTIFACT_TYPES)},
        signal=_sigmoid(1.3 * latents.media + 0.25 * rng.standard_normal(n)),
        jpeg=rng.random(n) < 0.3,
        stock_image=np.where(u[:, 3] < duplicate_fraction, rng.integers(0, _STOCK_IMAGES, size=n), -1),
        jingle=u[:, 4] < duplicate_fraction,
        seconds=rng.integers(0, WINDOW_SECONDS, size=(n, 3)),
    )


def _write_media(folder: Path, ids: np.ndarray, plan: _MediaPlan, seed: int) -> tuple[pd.DataFrame, int]:
    """Write every media file under `folder/media`; return the manifest and the duplicate-file count."""
    stock = [synth_media.encode_image(synth_media.render_stock_image(k), _stock_format(k))
             for k in range(_STOCK_IMAGES)]
    jingle = synth_media.encode_wav(synth_media.render_jingle())
    any_media = np.logical_or.reduce([plan.has[kind] for kind in ARTIFACT_TYPES])
    rows: list[tuple[str, str, int, int, str]] = []
    seen: set[str] = set()
    duplicates = 0
    for i in np.flatnonzero(any_media).tolist():
        for slot, kind in enumerate(ARTIFACT_TYPES):
            if not plan.has[kind][i]:
                continue
            name, data, source = _media_file(kind, i, seed, plan, stock, jingle)
            (folder / "media" / name).write_bytes(data)
            digest = hashlib.sha256(data).hexdigest()
            duplicates += digest in seen
            seen.add(digest)
            metadata = json.dumps({"source": source}, separators=(",", ":"))
            rows.append((f"media/{name}", kind, i, int(plan.seconds[i, slot]), metadata))
    entity = np.array([row[2] for row in rows], dtype=np.int64)
    seconds = np.array([row[3] for row in rows], dtype=np.int64)
    manifest = pd.DataFrame({
        "path": [row[0] for row in rows],
        "artifact_type": [row[1] for row in rows],
        "entity_id": ids[entity],
        "timestamp": _format_timestamps(seconds, np.zeros_like(entity)),
        "metadata": [row[4] for row in rows],
    })
    return manifest, duplicates


def _stock_format(index: int) -> str:
    """Stock images alternate PNG and JPEG so duplicates occur in both formats."""
    return "jpeg" if index % 2 else "png"


def _media_file(kind: str, i: int, seed: int, plan: _MediaPlan, stock: list[bytes],
                jingle: bytes) -> tuple[str, bytes, str]:
    """(file name, bytes, source) of entity `i`'s media of one kind; stock content is shared bytes."""
    signal = float(plan.signal[i])
    if kind == "image":
        stock_index = int(plan.stock_image[i])
        if stock_index >= 0:
            return f"img_{i:06d}.{_EXTENSIONS[_stock_format(stock_index)]}", stock[stock_index], "stock"
        fmt = "jpeg" if plan.jpeg[i] else "png"
        image = synth_media.render_image(signal, _rng(seed, _IMAGE, i))
        return f"img_{i:06d}.{_EXTENSIONS[fmt]}", synth_media.encode_image(image, fmt), "camera"
    if kind == "audio":
        if plan.jingle[i]:
            return f"aud_{i:06d}.wav", jingle, "jingle"
        samples = synth_media.render_tone(signal, _rng(seed, _AUDIO, i))
        return f"aud_{i:06d}.wav", synth_media.encode_wav(samples), "microphone"
    frames = synth_media.render_video(signal, _rng(seed, _VIDEO, i))
    return f"vid_{i:06d}.mp4", synth_media.encode_mp4(frames), "camera"


def _write_csv(path: Path, frames: Iterator[pd.DataFrame], float_format: str) -> int:
    """Write frames as one UTF-8 CSV with "\\n" line ends and fixed float format; returns the row count."""
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as out:
        for k, frame in enumerate(frames):
            frame.to_csv(out, index=False, header=k == 0, float_format=float_format, lineterminator="\n")
            rows += len(frame)
    return rows
