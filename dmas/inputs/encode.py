"""From `EntityRows` to the fixed-shape arrays the model reads (dmas.model.batch.BATCH_SPEC).

Vectorised over every row (numpy/pyarrow; no Python loop per entity), so training encodes a
million entities at once and a request encodes one with the same code. When training, the
vocabularies and normalisation statistics are fitted on the training split (`fit_encoding`); when
scoring, a run's recorded `InputEncoding` is applied, and values it never saw (an event type that
appeared after training, an artifact type without statistics) are left out and reported per entity.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from dmas.errors import StoreError
from dmas.inputs.rows import EntityRows
from dmas.vocabulary import TARGET_KEYS

ARTIFACT_TYPE_INDEX = {"image": 1, "audio": 2, "video": 3}
_MICROS = 1_000_000


@dataclass(frozen=True)
class InputLimits:
    """How many events, neighbours and artifact slots each entity gets (L, K, M)."""

    max_events: int
    max_neighbors: int
    max_artifacts: int


@dataclass(frozen=True)
class InputEncoding:
    """A run's way of turning rows into inputs: its limits, vocabularies and training-split statistics."""

    limits: InputLimits
    attribute_names: tuple[str, ...]
    event_types: tuple[str, ...]  # index i+1 in event_type is event_types[i]; 0 is padding
    interaction_types: tuple[str, ...]
    artifact_dims: dict[int, int]  # artifact type index -> vector length
    normalisation: dict[str, list[float]]

    @classmethod
    def of_run(cls, config: dict) -> InputEncoding:
        """The encoding recorded in a run's config.json."""
        tensorize, model = config["train_config"]["tensorize"], config["model_config"]
        return cls(InputLimits(tensorize["max_events"], tensorize["max_neighbors"],
                               tensorize["max_artifacts_per_entity"]),
                   tuple(config["attribute_names"]), tuple(config["event_types"]),
                   tuple(config["interaction_types"]),
                   {int(kind): dim for kind, dim in model["artifact_dims"].items()}, config["normalisation"])


@dataclass
class EncodedInputs:
    """Model inputs (and targets) for the rows' entities, plus what names each slot."""

    arrays: dict[str, np.ndarray]  # first axis N
    event_keys: np.ndarray  # int64 [N, L]: microsecond timestamps of the events in each slot
    artifact_sha256: np.ndarray  # object [N, M]: the blob filling each artifact slot ("" for padding)
    artifact_ids: np.ndarray  # object [N, M]: the artifact row filling each slot ("" for padding)
    encoding: InputEncoding
    unseen: list[dict[str, list[str]]] = field(default_factory=list)  # per entity: values the run never saw


def fit_encoding(rows: EntityRows, reference_us: int, limits: InputLimits, train: np.ndarray,
                 attribute_names: tuple[str, ...] | None = None) -> EncodedInputs:
    """Encode every entity, fitting vocabularies on all rows and statistics on the `train` entities."""
    numeric = _numeric_columns(_parse_attribute_objects(rows.attributes))
    names = tuple(attribute_names) if attribute_names is not None else tuple(
        name for name in numeric if name not in TARGET_KEYS)
    missing = [name for name in names if name not in numeric]
    if missing:
        raise StoreError(f"attribute(s) {missing} are not numeric attributes of any entity; numeric ones: {numeric}")
    vocabularies = (_vocabulary(rows.events["event_type"]), _vocabulary(rows.links["interaction_type"]))
    return _encode(rows, reference_us, limits, names, vocabularies, {}, train)


def encode(rows: EntityRows, reference_us: int | np.ndarray, encoding: InputEncoding) -> EncodedInputs:
    """Encode the rows' entities with a run's recorded encoding (`reference_us`: one time, or one per entity)."""
    return _encode(rows, reference_us, encoding.limits, encoding.attribute_names,
                   (encoding.event_types, encoding.interaction_types), encoding.normalisation, None,
                   encoding.artifact_dims)


def _encode(rows: EntityRows, reference_us: int | np.ndarray, limits: InputLimits, names: tuple[str, ...],
            vocabularies: tuple[tuple[str, ...], tuple[str, ...]], stats: dict, train: np.ndarray | None,
            artifact_dims: dict[int, int] | None = None) -> EncodedInputs:
    """The one implementation behind both: `train` given means "fit the statistics into `stats`"."""
    unseen: list[dict[str, list[str]]] = [{} for _ in range(len(rows))]
    raw, targets = _attribute_matrix(rows.attributes, names, unseen)
    attributes = _standardise_columns(raw, train, stats, "attributes")
    if rows.neighbour_attributes is None:
        neighbours = attributes
    else:
        neighbour_raw, _ = _attribute_matrix(rows.neighbour_attributes, names, None)
        neighbours = _standardise_columns(neighbour_raw, None, stats, "attributes")
    arrays = {"attributes": attributes.astype(np.float32)}
    event_arrays, event_keys = _events(rows, vocabularies[0], limits.max_events, reference_us, train, stats, unseen)
    arrays.update(event_arrays)
    arrays.update(_neighbors(rows, neighbours, vocabularies[1], limits.max_neighbors, train, stats, unseen))
    artifact_arrays, dims, artifact_sha, artifact_ids = _artifacts(rows, limits.max_artifacts, train, stats,
                                                                   artifact_dims, unseen)
    arrays.update(artifact_arrays)
    arrays.update(targets)
    encoding = InputEncoding(limits, names, vocabularies[0], vocabularies[1], dims, stats)
    return EncodedInputs(arrays, event_keys, artifact_sha, artifact_ids, encoding, unseen)


def _parse_attribute_objects(column: pa.Array) -> pa.Table:
    """All attribute JSON objects as one table (a column per key), parsed by Arrow in one pass.

    A key whose values mix numbers and text makes Arrow's reader refuse; such keys are parsed
    row by row instead, and the mixed key is treated as non-numeric.
    """
    texts = column.to_pylist()
    if not texts:
        return pa.table({"_": pa.nulls(0)})
    try:
        return pajson.read_json(io.BytesIO("\n".join(texts).encode() + b"\n"))
    except pa.ArrowInvalid:
        parsed = [json.loads(text) for text in texts]
        keys = sorted({key for row in parsed for key in row})
        columns = {}
        for key in keys:
            values = [row.get(key) for row in parsed]
            numbers = all(value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
                          for value in values)
            columns[key] = pa.array(values, pa.float64()) if numbers else pa.array([None] * len(parsed), pa.string())
        return pa.table(columns) if columns else pa.table({"_": pa.nulls(len(parsed))})


def _is_numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)


def _numeric_columns(parsed: pa.Table) -> list[str]:
    return sorted(name for name in parsed.column_names if _is_numeric(parsed[name].type))


def _attribute_matrix(texts: pa.Array, names: tuple[str, ...], unseen: list[dict] | None):
    """Numeric attribute matrix [N, A] (NaN where absent), and the targets with their masks.

    Each entity's object is read on its own, so its values never depend on the other entities read
    with it. A number (or a boolean, as 1/0) is a value; text or anything else where training saw
    numbers counts as missing (and is reported in `unseen`).
    """
    objects = [json.loads(text) for text in texts.to_pylist()]
    wanted = (*names, *TARGET_KEYS)
    values = np.full((len(objects), len(wanted)), np.nan)
    for row, attributes in enumerate(objects):
        for column, name in enumerate(wanted):
            value = attributes.get(name)
            if isinstance(value, (bool, int, float)):
                values[row, column] = float(value)
            elif value is not None and unseen is not None and column < len(names):
                unseen[row].setdefault("attributes", []).append(name)
    matrix = values[:, :len(names)]
    targets = {}
    for column, name in enumerate(TARGET_KEYS, start=len(names)):
        targets[name] = np.nan_to_num(values[:, column]).astype(np.float32)
        targets[f"{name}_mask"] = ~np.isnan(values[:, column])
    return matrix, targets


def _standardise_columns(matrix: np.ndarray, train: np.ndarray | None, stats: dict, name: str) -> np.ndarray:
    """Z-score each column with training-split statistics (fitted when `train` is given); missing -> 0."""
    if train is not None:
        if matrix.shape[1] == 0:
            stats[f"{name}_mean"], stats[f"{name}_std"] = [], []
        else:
            reference = matrix[train] if train.any() else matrix
            with warnings.catch_warnings():  # a column with no training values: its mean is NaN, replaced by 0
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nan_to_num(np.nanmean(reference, axis=0))
                std = np.nan_to_num(np.nanstd(reference, axis=0))
            stats[f"{name}_mean"], stats[f"{name}_std"] = mean.tolist(), np.where(std > 0, std, 1.0).tolist()
    if matrix.shape[1] == 0:
        return matrix
    mean, std = np.asarray(stats[f"{name}_mean"], np.float64), np.asarray(stats[f"{name}_std"], np.float64)
    return np.nan_to_num((matrix - mean) / std)


def _standardise_values(values: np.ndarray, train_rows: np.ndarray | None, stats: dict, name: str) -> np.ndarray:
    if train_rows is not None:
        reference = values[train_rows] if train_rows.any() else values
        mean = float(reference.mean()) if len(reference) else 0.0
        std = float(reference.std()) if len(reference) else 1.0
        stats[f"{name}_mean"], stats[f"{name}_std"] = [mean], [std if std > 0 else 1.0]
    if f"{name}_mean" not in stats:  # the run saw no such values: nothing of this kind reaches its inputs
        return values
    return (values - stats[f"{name}_mean"][0]) / stats[f"{name}_std"][0]


def _vocabulary(column: pa.ChunkedArray | pa.Array) -> tuple[str, ...]:
    return tuple(sorted(pc.unique(column).to_pylist()))


def _codes(column: pa.Array, vocabulary: tuple[str, ...]) -> np.ndarray:
    """Each row's 1-based index into `vocabulary` (0 is padding), -1 for a value it lacks."""
    codes = pc.index_in(column, value_set=pa.array(vocabulary, pa.string()))
    return pc.fill_null(codes, -2).to_numpy(zero_copy_only=False).astype(np.int64) + 1


def _of_known_types(table: pa.Table, column: str, vocabulary: tuple[str, ...], unseen: list[dict],
                    what: str) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """The rows whose `column` is in `vocabulary`, their codes and owners; the others are noted as unseen."""
    codes = _codes(table[column], vocabulary)
    owner = table["owner"].to_numpy()
    dropped = codes < 1
    if dropped.any():
        _note_unseen(unseen, what, owner[dropped], table[column].filter(pa.array(dropped)).to_pylist())
        table, codes, owner = table.filter(pa.array(~dropped)), codes[~dropped], owner[~dropped]
    return table, codes, owner


def _note_unseen(unseen: list[dict], what: str, owners: np.ndarray, values: list) -> None:
    for owner, value in zip(owners.tolist(), values):
        names = unseen[owner].setdefault(what, [])
        if value not in names:
            names.append(value)


def _last_per_entity(index: np.ndarray, sort_keys: list[np.ndarray], limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows kept (the last `limit` of each entity under `sort_keys`, ascending) and their slot 0..limit-1."""
    order = np.lexsort([*reversed(sort_keys), index])  # by entity, then the keys in the given priority
    ordered_index = index[order]
    counts = np.bincount(ordered_index, minlength=1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(len(order)) - starts[ordered_index]
    first_kept = np.maximum(counts[ordered_index] - limit, 0)
    keep = position >= first_kept
    return order[keep], (position - first_kept)[keep]


def _events(rows: EntityRows, vocabulary: tuple[str, ...], limit: int, reference_us: int | np.ndarray,
            train: np.ndarray | None, stats: dict, unseen: list[dict]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    n = len(rows)
    events, codes, index = _of_known_types(rows.events, "event_type", vocabulary, unseen, "event_types")
    times = events["timestamp"].to_numpy()
    values = events["event_value"].to_numpy()
    value_rank = np.argsort(np.argsort(values, kind="stable"), kind="stable")  # ties broken deterministically
    order = np.lexsort((value_rank, codes, times, index))
    previous = np.empty(len(order), dtype=np.int64)
    if len(order):
        sorted_index, sorted_times = index[order], times[order]
        same_entity = np.concatenate([[False], sorted_index[1:] == sorted_index[:-1]])
        gaps = np.where(same_entity, np.diff(sorted_times, prepend=sorted_times[0]), 0)
        previous[order] = gaps
    values = _standardise_values(values, None if train is None else train[index], stats, "event_value")
    kept, slots = _last_per_entity(index, [times, codes, value_rank], limit)
    out = {
        "event_type": np.zeros((n, limit), np.int64),
        "event_value": np.zeros((n, limit), np.float32),
        "event_dt_prev": np.zeros((n, limit), np.float32),
        "event_age": np.zeros((n, limit), np.float32),
        "event_mask": np.zeros((n, limit), bool),
    }
    keys = np.zeros((n, limit), np.int64)
    target = (index[kept], slots)
    out["event_type"][target] = codes[kept]
    out["event_value"][target] = values[kept]
    out["event_dt_prev"][target] = np.log1p(np.maximum(previous[kept], 0) / _MICROS)
    reference = np.broadcast_to(np.asarray(reference_us, np.int64), (n,))  # "age": time to the reference
    out["event_age"][target] = np.log1p(np.maximum(reference[index[kept]] - times[kept], 0) / _MICROS)
    out["event_mask"][target] = True
    keys[target] = times[kept]
    return out, keys


def _neighbors(rows: EntityRows, neighbours: np.ndarray, vocabulary: tuple[str, ...], limit: int,
               train: np.ndarray | None, stats: dict, unseen: list[dict]) -> dict[str, np.ndarray]:
    """The most recent `limit` links per entity, ties by neighbour row (i.e. id), then type."""
    n = len(rows)
    links, codes, owner = _of_known_types(rows.links, "interaction_type", vocabulary, unseen, "interaction_types")
    other = links["other"].to_numpy()
    value = links["interaction_value"].to_numpy()
    time = links["timestamp"].to_numpy()
    if len(value):
        value = _standardise_values(value, None if train is None else train[owner], stats, "interaction_value")
    # the `limit` most recent per entity (ties: smaller neighbour row, then type), in chronological slot order
    kept, slots = _last_per_entity(owner, [time, -other, -codes], limit)
    out = {
        "neighbor_attributes": np.zeros((n, limit, neighbours.shape[1]), np.float32),
        "neighbor_type": np.zeros((n, limit), np.int64),
        "neighbor_value": np.zeros((n, limit), np.float32),
        "neighbor_mask": np.zeros((n, limit), bool),
    }
    target = (owner[kept], slots)
    out["neighbor_attributes"][target] = neighbours[other[kept]]
    out["neighbor_type"][target] = codes[kept]
    out["neighbor_value"][target] = value[kept]
    out["neighbor_mask"][target] = True
    return out


def _artifacts(rows: EntityRows, limit: int, train: np.ndarray | None, stats: dict,
               known_dims: dict[int, int] | None, unseen: list[dict]) -> tuple[dict, dict[int, int], np.ndarray,
                                                                                np.ndarray]:
    """Each entity's most recent artifacts that have features; vectors standardised per artifact type."""
    n = len(rows)
    matrices = _feature_matrices(rows.features)
    if known_dims is not None:  # scoring: only the types (and vector lengths) the run was trained with
        matrices = {kind: value for kind, value in matrices.items()
                    if known_dims.get(kind) == value[1].shape[1] and f"artifact_{kind}_mean" in stats}
    usable = pa.concat_arrays([shas for shas, _ in matrices.values()]) if matrices else pa.array([], pa.string())
    artifacts = rows.artifacts
    with_features = pc.is_in(artifacts["sha256"], value_set=usable)
    if known_dims is not None and not pc.all(with_features).as_py() and len(artifacts):
        missing = artifacts.filter(pc.invert(with_features))
        _note_unseen(unseen, "artifacts_without_features", missing["owner"].to_numpy(),
                     missing["artifact_id"].to_pylist())
    owned = artifacts.filter(with_features)
    index = owned["owner"].to_numpy()
    type_names = pa.array(list(ARTIFACT_TYPE_INDEX), pa.string())
    kinds = pc.index_in(owned["artifact_type"], value_set=type_names).to_numpy(zero_copy_only=False) + 1
    times = owned["timestamp"].to_numpy()
    artifact_rank = pc.rank(owned["artifact_id"], sort_keys="ascending", tiebreaker="first").to_numpy()
    # the `limit` most recent per entity (ties: smaller artifact_id), in chronological slot order
    kept, slots = _last_per_entity(index, [times, -artifact_rank.astype(np.int64)], limit)
    shas = owned["sha256"].combine_chunks()
    dims = known_dims if known_dims is not None else {kind: matrix.shape[1] for kind, (_, matrix) in matrices.items()}
    out = {
        "artifact_vector": np.zeros((n, limit, max(dims.values(), default=1)), np.float32),
        "artifact_type": np.zeros((n, limit), np.int64),
        "artifact_mask": np.zeros((n, limit), bool),
    }
    sha_slots = np.full((n, limit), "", dtype=object)
    id_slots = np.full((n, limit), "", dtype=object)
    artifact_ids = owned["artifact_id"].combine_chunks()
    for kind, (kind_shas, matrix) in matrices.items():
        chosen = kept[kinds[kept] == kind]
        slot = slots[kinds[kept] == kind]
        position = pc.index_in(shas.take(pa.array(chosen)), value_set=kind_shas).to_numpy(zero_copy_only=False)
        vectors = _standardise_columns(matrix[position].astype(np.float64),
                                       None if train is None else train[index[chosen]], stats, f"artifact_{kind}")
        out["artifact_vector"][index[chosen], slot, : matrix.shape[1]] = vectors
        out["artifact_type"][index[chosen], slot] = kind
        out["artifact_mask"][index[chosen], slot] = True
        sha_slots[index[chosen], slot] = shas.take(pa.array(chosen)).to_numpy(zero_copy_only=False)
        id_slots[index[chosen], slot] = artifact_ids.take(pa.array(chosen)).to_numpy(zero_copy_only=False)
    return out, dict(sorted(dims.items())), sha_slots, id_slots


def _feature_matrices(features: pa.Table) -> dict[int, tuple[pa.Array, np.ndarray]]:
    """Per artifact type index: the blobs' sha256 and their vectors as one [rows, dim] matrix."""
    matrices = {}
    for name, kind in ARTIFACT_TYPE_INDEX.items():
        of_kind = features.filter(pc.equal(features["artifact_type"], name))
        if of_kind.num_rows == 0:
            continue
        vectors = of_kind["vector"].combine_chunks()
        flat = pc.list_flatten(vectors).to_numpy(zero_copy_only=False)
        matrices[kind] = (of_kind["sha256"].combine_chunks(), flat.reshape(of_kind.num_rows, -1))
    return matrices
