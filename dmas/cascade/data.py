"""A cascade's sequence data: documents from a table file (or the embedded corpus) as token windows.

Text is encoded as UTF-8 bytes (vocabulary 256, no tokenizer to download); token-id documents are
lists of integers (Parquet/JSON lists) or whitespace-separated integers (CSV). Every document is
checked: a bad one is a `SequenceDataError` naming the file, the row and the column.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dmas.cascade.config import BYTE_VOCABULARY, SequenceData
from dmas.cascade.corpus import synthetic_documents
from dmas.errors import DmasError
from dmas.ingest.readers import read_table_file

NEWLINE = 10  # the separator after each text document


class SequenceDataError(DmasError):
    """The sequence data cannot be used (missing column, a bad document, too little text)."""


@dataclass(frozen=True, eq=False)
class TokenWindows:
    """Windows of seq_len + 1 tokens: `train` in its seeded order (fractions take a prefix), `validation`."""

    train: np.ndarray  # int64 [n_train, seq_len + 1]
    validation: np.ndarray  # int64 [n_validation, seq_len + 1]
    vocab_size: int
    sha256: str  # of the token stream(s) the windows were cut from
    source: str
    tokens: int

    def train_rows(self, fraction: float) -> int:
        """How many training windows a run with this data fraction reads (at least one)."""
        return max(1, math.ceil(fraction * len(self.train)))

    def describe(self) -> dict:
        return {"source": self.source, "sha256": self.sha256, "tokens": self.tokens, "vocab_size": self.vocab_size,
                "windows": {"train": int(len(self.train)), "validation": int(len(self.validation))},
                "window_tokens": int(self.train.shape[1] - 1)}


def load_windows(data: SequenceData, seq_len: int) -> TokenWindows:
    """Read the documents, cut them into windows and split them (see `SequenceData`)."""
    stream, vocab_size = _token_stream(data, data.path)
    windows = _windows(stream, seq_len, data.path or "the embedded corpus")
    order = np.random.default_rng([data.seed, 7]).permutation(len(windows))
    digest = hashlib.sha256(stream.tobytes())
    if data.validation_path:
        held_out, held_vocab = _token_stream(data, data.validation_path)
        validation = _windows(held_out, seq_len, data.validation_path)
        digest.update(b"\0validation\0" + held_out.tobytes())
        vocab_size = max(vocab_size, held_vocab)
        train = windows[order]
    else:
        aside = min(max(1, round(data.validation_fraction * len(windows))), len(windows) - 1)
        validation, train = windows[order[:aside]], windows[order[aside:]]
    validation = validation[: data.max_validation_windows]
    source = Path(data.path).name if data.path else f"embedded corpus ({data.synthetic_documents} documents)"
    return TokenWindows(train=train, validation=validation, vocab_size=vocab_size, sha256=digest.hexdigest(),
                        source=source, tokens=int(stream.size))


def _token_stream(data: SequenceData, path: str | None) -> tuple[np.ndarray, int]:
    """All documents of `path` joined into one int64 stream, and the vocabulary size."""
    if path is None:
        documents: Iterator[tuple[int, object]] = enumerate(synthetic_documents(data.synthetic_documents, data.seed),
                                                            start=1)
        return _encode_bytes(documents, "the embedded corpus", data.column), BYTE_VOCABULARY
    if data.encoding == "bytes":
        return _encode_bytes(_column_values(path, data.column), path, data.column), BYTE_VOCABULARY
    stream = _encode_token_ids(_column_values(path, data.column), path, data.column)
    largest = int(stream.max()) if stream.size else 0
    if data.vocab_size is not None and largest >= data.vocab_size:
        raise SequenceDataError(f"{path}: column '{data.column}' holds token id {largest}, but vocab_size is "
                                f"{data.vocab_size} (ids run 0 .. {data.vocab_size - 1})")
    return stream, data.vocab_size or max(2, largest + 1)


def _column_values(path: str, column: str) -> Iterator[tuple[int, object]]:
    """(row as the user numbers it, value) of `column`, chunk by chunk through the table readers."""
    for chunk in read_table_file(path):
        if chunk.bad_rows:
            bad = chunk.bad_rows[0]
            where = f"row {bad.row}" + (f", column {bad.field!r}" if bad.field else "")
            raise SequenceDataError(f"{path}: {where}: {bad.error}")
        if column not in chunk.frame.columns:
            names = ", ".join(map(str, chunk.frame.columns))
            raise SequenceDataError(f"{path}: no column '{column}' (columns: {names}); name the documents' column "
                                    "with data.column")
        yield from zip(chunk.rows.tolist(), chunk.frame[column].tolist())


def _encode_bytes(values: Iterator[tuple[int, object]], path: str, column: str) -> np.ndarray:
    pieces = []
    for row, value in values:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue  # an empty document adds nothing
        if not isinstance(value, str):
            raise SequenceDataError(f"{path}: row {row}, column '{column}': expected text, got "
                                    f"{type(value).__name__}; for token ids set data.encoding: token_ids")
        pieces.append(value.encode("utf-8") + bytes([NEWLINE]))
    return np.frombuffer(b"".join(pieces), dtype=np.uint8).astype(np.int64)


def _encode_token_ids(values: Iterator[tuple[int, object]], path: str, column: str) -> np.ndarray:
    pieces = []
    for row, value in values:
        ids = _ids(value, path, row, column)
        if ids.size:
            pieces.append(ids)
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)


def _ids(value: object, path: str, row: int, column: str) -> np.ndarray:
    where = f"{path}: row {row}, column '{column}'"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return np.zeros(0, dtype=np.int64)
    if isinstance(value, str):
        items: Sequence[object] = value.split()
    elif isinstance(value, Sequence | np.ndarray):
        items = list(value)
    else:
        raise SequenceDataError(f"{where}: expected a list of token ids, got {type(value).__name__}")
    ids = []
    for item in items:
        try:
            number = int(item)
        except (TypeError, ValueError):
            raise SequenceDataError(f"{where}: '{item}' is not a token id (an integer)") from None
        if isinstance(item, float) and not float(item).is_integer() or number < 0:
            raise SequenceDataError(f"{where}: token id {item} must be a non-negative integer")
        ids.append(number)
    return np.asarray(ids, dtype=np.int64)


def _windows(stream: np.ndarray, seq_len: int, where: str) -> np.ndarray:
    """Non-overlapping inputs of seq_len tokens, each with its next-token targets (one token of overlap)."""
    count = (len(stream) - 1) // seq_len
    if count < 2:
        raise SequenceDataError(f"{where}: {len(stream)} tokens make {count} window(s) of {seq_len + 1}; "
                                "a cascade needs at least 2 (more data, or a shorter model.seq_len)")
    starts = np.arange(count) * seq_len
    return stream[starts[:, None] + np.arange(seq_len + 1)]
