"""The embedded sequence corpus: seeded synthetic text with structure at three ranges, for demos and tests.

A real corpus cannot be downloaded at run time, and a cascade needs data on which bigger models and
more data really do better. This text has structure a model learns in stages, so loss falls with
scale the way it does on natural text:

- spelling (short range): a lexicon of pseudo-words built from syllables, drawn with Zipf frequencies;
- grammar (middle range): sentences `[adjective] noun verb [adverb] [number] object-noun .`, where
  the verb's ending agrees with the subject noun's class (nouns of class A end in "a", take verbs in
  "-ta"; class B in "o", verbs in "-mo"), and numbers are spelled digit words that count upward;
- topic (long range): each document draws one topic that tilts its noun choice, so a model that
  remembers the document's earlier nouns predicts later ones better.

Pure function of (n_documents, seed): the same call gives the same documents, byte for byte.
"""

from __future__ import annotations

import numpy as np

SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pu", "da", "fi", "go", "he", "ju", "wy")
DIGITS = ("nul", "un", "duo", "tri", "kvar", "kvin", "ses", "sep", "ok", "naŭ")
LEXICON_SIZE = {"noun": 120, "verb": 60, "adjective": 40, "adverb": 20}
TOPICS = 8
ZIPF_EXPONENT = 1.1


def synthetic_documents(n_documents: int, seed: int = 0) -> list[str]:
    """`n_documents` documents of 3-12 sentences each (see the module docstring)."""
    rng = np.random.default_rng([seed, 20261202])
    words = _lexicon(rng)
    zipf = {kind: _zipf(len(items)) for kind, items in words.items()}
    topic_nouns = [rng.permutation(LEXICON_SIZE["noun"]) for _ in range(TOPICS)]
    documents = []
    for _ in range(n_documents):
        topic = topic_nouns[int(rng.integers(TOPICS))]
        noun_weights = zipf["noun"][np.argsort(topic)]  # the topic's favourite nouns get the Zipf head
        sentences = [_sentence(rng, words, zipf, noun_weights) for _ in range(int(rng.integers(3, 13)))]
        documents.append(" ".join(sentences))
    return documents


def _lexicon(rng: np.random.Generator) -> dict[str, list[str]]:
    """Distinct pseudo-words per part of speech; a noun's class shows in its last letter."""
    seen: set[str] = set()
    words: dict[str, list[str]] = {}
    for kind, count in LEXICON_SIZE.items():
        items = []
        while len(items) < count:
            stem = "".join(SYLLABLES[i] for i in rng.integers(len(SYLLABLES), size=int(rng.integers(1, 4))))
            if kind == "noun":
                stem += "a" if len(items) % 2 == 0 else "o"
            if stem not in seen:
                seen.add(stem)
                items.append(stem)
        words[kind] = items
    return words


def _zipf(count: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, count + 1) ** ZIPF_EXPONENT
    return weights / weights.sum()


def _sentence(rng: np.random.Generator, words: dict[str, list[str]], zipf: dict[str, np.ndarray],
              noun_weights: np.ndarray) -> str:
    def pick(kind: str, weights: np.ndarray | None = None) -> str:
        chosen = weights if weights is not None else zipf[kind]
        return words[kind][int(rng.choice(len(chosen), p=chosen / chosen.sum()))]

    subject = pick("noun", noun_weights)
    verb = pick("verb") + ("ta" if subject.endswith("a") else "mo")
    parts = ([pick("adjective")] if rng.random() < 0.4 else []) + [subject, verb]
    if rng.random() < 0.3:
        parts.append(pick("adverb"))
    if rng.random() < 0.25:
        start = int(rng.integers(0, 7))
        parts.extend(DIGITS[start:start + int(rng.integers(1, 4))])
    parts.append(pick("noun", noun_weights))
    return " ".join(parts) + "."
