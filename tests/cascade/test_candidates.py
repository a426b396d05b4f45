"""Candidate corpora: deterministic from their seed, severities ordered, sizes as documented; the decision metric."""

from __future__ import annotations

import math

import pytest

from dmas.cascade import candidates
from dmas.cascade.corpus import synthetic_documents

DOCUMENTS = synthetic_documents(200, 0)
MAKERS = {
    "mode_collapse": lambda severity, seed: candidates.mode_collapse(DOCUMENTS, severity, seed),
    "token_noise": lambda severity, seed: candidates.token_noise(DOCUMENTS, severity, seed),
    "subset": lambda severity, seed: candidates.subset(DOCUMENTS, severity, seed),
    "recursive_refit": lambda severity, seed: candidates.recursive_refit(DOCUMENTS, int(severity), seed),
}
SEVERITY = {"mode_collapse": 0.5, "token_noise": 0.1, "subset": 0.5, "recursive_refit": 1}


def _bytes(documents: list[str]) -> bytes:
    return "\n".join(documents).encode()


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_same_seed_same_bytes_and_another_seed_other_bytes(name):
    make, severity = MAKERS[name], SEVERITY[name]
    assert _bytes(make(severity, 1)) == _bytes(make(severity, 1))
    assert _bytes(make(severity, 1)) != _bytes(make(severity, 2))
    assert _bytes(make(severity, 1)) != _bytes(DOCUMENTS)


def test_mode_collapse_replaces_the_share_with_copies_of_a_few_documents():
    distinct = []
    for share in (0.0, 0.25, 0.5, 0.75):
        out = candidates.mode_collapse(DOCUMENTS, share, 3, modes=8)
        assert len(out) == len(DOCUMENTS)
        changed = [i for i, (new, old) in enumerate(zip(out, DOCUMENTS)) if new != old]
        assert len(changed) == round(share * len(DOCUMENTS))
        assert len({out[i] for i in changed}) <= 8
        assert all(out[i] in DOCUMENTS for i in changed)
        distinct.append(len(set(out)))
    assert distinct == sorted(distinct, reverse=True) and distinct[0] > distinct[-1]


def test_token_noise_keeps_lengths_and_changes_characters_at_the_rate():
    alphabet = set("".join(DOCUMENTS))
    total = sum(map(len, DOCUMENTS))
    changed_shares = []
    for rate in (0.0, 0.05, 0.15):
        out = candidates.token_noise(DOCUMENTS, rate, 3)
        assert [len(d) for d in out] == [len(d) for d in DOCUMENTS]
        assert set("".join(out)) <= alphabet
        changed = sum(a != b for new, old in zip(out, DOCUMENTS) for a, b in zip(new, old)) / total
        # a substitution draws the same character 1/|alphabet| of the time
        expected = rate * (1 - 1 / len(alphabet))
        assert abs(changed - expected) < 0.01
        changed_shares.append(changed)
    assert changed_shares[0] == 0.0 and changed_shares == sorted(changed_shares)


def test_subset_keeps_the_share_in_order():
    out = candidates.subset(DOCUMENTS, 0.25, 3)
    assert len(out) == 50
    positions = [DOCUMENTS.index(d) for d in out]
    assert positions == sorted(positions)
    assert candidates.subset(DOCUMENTS, 1.0, 3) == DOCUMENTS
    with pytest.raises(ValueError):
        candidates.subset(DOCUMENTS, 0.0, 3)


def test_recursive_refit_samples_the_source_ngrams_at_the_same_lengths():
    order = 4
    source = {d[i:i + order] for d in DOCUMENTS for i in range(len(d) - order + 1)}
    assert candidates.recursive_refit(DOCUMENTS, 0, 3) == DOCUMENTS
    out = candidates.recursive_refit(DOCUMENTS, 1, 3, order=order)
    assert [len(d) for d in out] == [len(d) for d in DOCUMENTS]
    grams = [d[i:i + order] for d in out for i in range(len(d) - order + 1)]
    # every 4-gram inside a sampled document was seen in the source, but for the rare restarts
    assert sum(g in source for g in grams) / len(grams) > 0.99
    assert sum(a in DOCUMENTS for a in out) == 0  # samples, not copies
    two = candidates.recursive_refit(DOCUMENTS, 2, 3, order=order)
    assert len({d[i:i + order] for d in two for i in range(len(d) - order + 1)}) <= len(set(grams))


def test_pairwise_decision_accuracy_and_its_ties_rule():
    truth = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
    assert candidates.pairwise_decision_accuracy(truth, truth)["accuracy"] == 1.0
    reversed_ = {name: -value for name, value in truth.items()}
    result = candidates.pairwise_decision_accuracy(reversed_, truth)
    assert result["accuracy"] == 0.0 and result["pairs"] == 6 and len(result["misordered"]) == 6
    one_swap = {"a": 1.0, "b": 2.0, "c": 4.0, "d": 3.0}
    assert candidates.pairwise_decision_accuracy(one_swap, truth)["accuracy"] == pytest.approx(5 / 6)
    tied_prediction = {"a": 1.0, "b": 1.0, "c": 3.0, "d": 4.0}
    assert candidates.pairwise_decision_accuracy(tied_prediction, truth)["accuracy"] == pytest.approx(5.5 / 6)
    missing = {"a": None, "b": 2.0, "c": 3.0, "d": 4.0}
    assert candidates.pairwise_decision_accuracy(missing, truth)["accuracy"] == pytest.approx(4.5 / 6)
    tied_truth = {"a": 1.0, "b": 1.0, "c": 3.0, "d": 4.0}
    result = candidates.pairwise_decision_accuracy(truth, tied_truth)
    assert result["pairs"] == 5 and result["truth_ties"] == 1 and result["accuracy"] == 1.0
    assert math.isnan(candidates.pairwise_decision_accuracy({"a": 1.0}, {"a": 1.0})["accuracy"])
    with pytest.raises(ValueError):
        candidates.pairwise_decision_accuracy({"a": 1.0}, truth)
