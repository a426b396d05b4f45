"""Sequence data for the cascade: documents from real table files, as bytes or token ids, checked row by row."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dmas.cascade.config import SequenceData
from dmas.cascade.corpus import synthetic_documents
from dmas.cascade.data import SequenceDataError, load_windows


def test_text_is_read_as_utf8_bytes_with_a_newline_after_each_document(tmp_path):
    path = tmp_path / "docs.csv"
    path.write_text("id,text\n" + "1,héllo wörld\n2,second document here\n" * 20, encoding="utf-8")
    windows = load_windows(SequenceData(path=str(path), validation_fraction=0.2), seq_len=8)
    stream = ("héllo wörld\nsecond document here\n" * 20).encode()
    assert windows.vocab_size == 256 and windows.tokens == len(stream)
    every = np.concatenate([windows.train, windows.validation])
    assert every.shape[1] == 9 and len(every) == (len(stream) - 1) // 8
    assert all(bytes(row.astype(np.uint8)) in stream for row in every)  # every window is a stretch of the text
    assert len(windows.validation) == round(0.2 * len(every))


def test_token_ids_come_from_list_columns_or_spaced_integers(tmp_path):
    ids = [[1, 2, 3, 4, 5, 6, 7, 8, 9], [9, 8, 7, 6, 5, 4, 3, 2, 1]] * 5
    parquet = tmp_path / "tokens.parquet"
    pq.write_table(pa.table({"tokens": ids}), parquet)
    csv = tmp_path / "tokens.csv"
    csv.write_text("tokens\n" + "".join(" ".join(map(str, row)) + "\n" for row in ids))
    from_lists = load_windows(SequenceData(path=str(parquet), column="tokens", encoding="token_ids"), seq_len=4)
    from_text = load_windows(SequenceData(path=str(csv), column="tokens", encoding="token_ids"), seq_len=4)
    assert from_lists.vocab_size == 10 and from_lists.tokens == 90
    assert from_lists.sha256 == from_text.sha256
    assert np.array_equal(from_lists.train, from_text.train)


def test_a_bad_token_names_the_file_row_and_column(tmp_path):
    path = tmp_path / "tokens.csv"
    path.write_text("tokens\n1 2 3\n4 five 6\n")
    with pytest.raises(SequenceDataError, match=r"tokens\.csv: row 3, column 'tokens': 'five' is not a token id"):
        load_windows(SequenceData(path=str(path), column="tokens", encoding="token_ids"), seq_len=2)
    with pytest.raises(SequenceDataError, match="holds token id 6, but vocab_size is 5"):
        path.write_text("tokens\n1 2 3\n4 5 6\n")
        load_windows(SequenceData(path=str(path), column="tokens", encoding="token_ids", vocab_size=5), seq_len=2)


def test_a_missing_column_and_too_little_text_are_clear_errors(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"body": "some text"}\n')
    with pytest.raises(SequenceDataError, match="no column 'text' .*columns: body.*data.column"):
        load_windows(SequenceData(path=str(path)), seq_len=4)
    with pytest.raises(SequenceDataError, match="make 0 window"):
        load_windows(SequenceData(path=str(path), column="body"), seq_len=64)


def test_a_separate_validation_file_is_held_out_whole(tmp_path):
    train, held = tmp_path / "train.jsonl", tmp_path / "held.jsonl"
    train.write_text("".join(f'{{"text": "document number {i} of the training set"}}\n' for i in range(40)))
    held.write_text("".join(f'{{"text": "held out text {i}"}}\n' for i in range(10)))
    windows = load_windows(SequenceData(path=str(train), validation_path=str(held)), seq_len=16)
    assert len(windows.train) == (windows.tokens - 1) // 16
    assert bytes(windows.validation[0, :16].astype(np.uint8)).startswith(b"held out text 0")


def test_smaller_fractions_read_a_prefix_of_larger_ones():
    windows = load_windows(SequenceData(synthetic_documents=60), seq_len=16)
    assert windows.train_rows(0.25) < windows.train_rows(0.5) < windows.train_rows(1.0) == len(windows.train)
    assert windows.train_rows(1e-9) == 1


def test_the_embedded_corpus_is_the_same_text_for_the_same_seed():
    assert synthetic_documents(30, seed=1) == synthetic_documents(30, seed=1)
    assert synthetic_documents(30, seed=1) != synthetic_documents(30, seed=2)
    text = " ".join(synthetic_documents(200))
    assert "ta " in text and "mo " in text  # verbs agree with their subjects' class
