"""Candidate sequence datasets of known quality, made from one source corpus, and how well a ranking of them holds.

Choosing data with a cascade means ranking candidate datasets by the full model each would give on
the target distribution. To measure whether the cascade ranks them right, build candidates whose
quality is known from the construction, each a pure function of (documents, severity, seed):

- `mode_collapse`: a share of the documents replaced by copies of a few of the others (the corpus
  collapsed onto a handful of modes; same number of documents);
- `token_noise`: each character replaced, at a rate, by one drawn uniformly from the corpus's own
  characters (the noisier labels of next-token prediction; characters, not bytes, so the text stays
  valid UTF-8; same lengths);
- `subset`: a share of the documents, kept in their order (a smaller dataset);
- `recursive_refit`: generations of fit-a-character-n-gram-model-and-sample-from-it (the model
  collapse of training on a model's output: local spelling survives, long-range structure fades;
  same lengths).

`pairwise_decision_accuracy` scores a ranking against the truth as DataDecide (Magnusson et al. 2025)
does: the share of candidate pairs put in the true order.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np

START = "\x02"  # pads the start of each document for the n-gram model (never in the output)


def mode_collapse(documents: Sequence[str], share: float, seed: int, *, modes: int = 8) -> list[str]:
    """`share` of the documents (seeded choice) replaced by copies of `modes` documents drawn from the rest."""
    _check_share(share)
    count = len(documents)
    rng = np.random.default_rng([seed, 1])
    replaced = rng.choice(count, size=round(share * count), replace=False)
    kept = np.setdiff1d(np.arange(count), replaced)
    if len(replaced) and len(kept) == 0:
        raise ValueError(f"mode_collapse: share {share} of {count} documents leaves none to copy")
    repeats = rng.choice(kept, size=min(modes, len(kept)), replace=False) if len(replaced) else kept[:0]
    out = list(documents)
    for position, index in enumerate(np.sort(replaced)):
        out[index] = documents[int(repeats[position % len(repeats)])]
    return out


def token_noise(documents: Sequence[str], rate: float, seed: int) -> list[str]:
    """Each character, with probability `rate`, replaced by one drawn uniformly from the corpus's characters."""
    _check_share(rate)
    alphabet = np.asarray(sorted(set("".join(documents))))
    rng = np.random.default_rng([seed, 2])
    out = []
    for document in documents:
        characters = np.asarray(list(document), dtype="<U1")
        hit = rng.random(len(characters)) < rate
        characters[hit] = alphabet[rng.integers(len(alphabet), size=int(hit.sum()))]
        out.append("".join(characters.tolist()))
    return out


def subset(documents: Sequence[str], share: float, seed: int) -> list[str]:
    """round(`share` x n) documents (seeded choice, at least one), in their original order."""
    if not 0 < share <= 1:
        raise ValueError(f"subset: share {share} must be in (0, 1]")
    rng = np.random.default_rng([seed, 3])
    chosen = np.sort(rng.choice(len(documents), size=max(1, round(share * len(documents))), replace=False))
    return [documents[int(i)] for i in chosen]


def recursive_refit(documents: Sequence[str], generations: int, seed: int, *, order: int = 4) -> list[str]:
    """`generations` rounds of: fit a character `order`-gram model to the documents, replace each document by
    a sample of it as long as the document (a context that ends every document it occurs in starts over)."""
    if generations < 0 or order < 1:
        raise ValueError(f"recursive_refit: generations {generations} must be >= 0 and order {order} >= 1")
    out = list(documents)
    for generation in range(generations):
        out = _ngram_sample(out, order, np.random.default_rng([seed, 4, generation]))
    return out


def _ngram_sample(documents: Sequence[str], order: int, rng: np.random.Generator) -> list[str]:
    context_length = order - 1
    counts: dict[str, dict[str, int]] = {}
    for document in documents:
        padded = START * context_length + document
        for position in range(context_length, len(padded)):
            following = counts.setdefault(padded[position - context_length:position], {})
            following[padded[position]] = following.get(padded[position], 0) + 1
    table = {}
    for context, following in counts.items():
        characters = sorted(following)
        weights = np.cumsum([following[c] for c in characters], dtype=np.float64)
        table[context] = (characters, weights / weights[-1])
    out = []
    for document in documents:
        context = START * context_length
        draws = rng.random(len(document))
        sampled = []
        for draw in draws:
            if context not in table:
                context = START * context_length  # only the very end of some documents: begin a new one
            characters, cumulative = table[context]
            character = characters[min(int(np.searchsorted(cumulative, draw, side="right")), len(characters) - 1)]
            sampled.append(character)
            context = (context + character)[-context_length:] if context_length else ""
        out.append("".join(sampled))
    return out


def pairwise_decision_accuracy(predicted: Mapping[str, float | None], truth: Mapping[str, float]) -> dict:
    """The share of candidate pairs whose order by `predicted` matches their order by `truth` (lower is better).

    Ties rule: a pair tied in the truth has no right answer and is left out (counted in `truth_ties`);
    a pair tied in the prediction, or with a candidate that has no prediction (None), scores one half."""
    names = sorted(truth)
    if set(predicted) != set(names):
        raise ValueError(f"predicted names {sorted(predicted)} differ from the truth's {names}")
    score, pairs, truth_ties, wrong = 0.0, 0, 0, []
    for first, second in itertools.combinations(names, 2):
        true_order = _sign(truth[first] - truth[second])
        if true_order == 0:
            truth_ties += 1
            continue
        pairs += 1
        guess_first, guess_second = predicted[first], predicted[second]
        guess = 0 if guess_first is None or guess_second is None else _sign(guess_first - guess_second)
        if guess == true_order:
            score += 1.0
        else:
            score += 0.5 if guess == 0 else 0.0
            wrong.append([first, second])
    return {"accuracy": score / pairs if pairs else math.nan, "pairs": pairs, "truth_ties": truth_ties,
            "misordered": wrong}


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def _check_share(share: float) -> None:
    if not 0 <= share <= 1:
        raise ValueError(f"share {share} must be in [0, 1]")
