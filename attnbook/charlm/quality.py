"""Generation quality of sampled text, and inference speed measured as in the seed study.

Definitions (``w`` = whitespace-split words, lower-cased, with leading/trailing punctuation
stripped; empty strings dropped):

- ``distinct_n(seq, n) = |unique n-grams| / |n-grams|`` (Li et al. 2016), on characters or words;
  1 = no n-gram repeats. NaN when ``seq`` has fewer than ``n`` items.
- ``repetition(text, n=8) = 1 − distinct_n(characters, n)``: the share of character n-grams that
  are repeats (Welleck et al. 2020's seq-rep-n on characters); loops such as "the the the" push it up.
- ``coherence(text, words) = |{w ∈ text : w ∈ words}| / |w|``: the share of generated words that
  are words of the training text. The seed's "semantic similarity between segments" had no
  definition; at character level the first question is whether the model writes words at all.
"""

from __future__ import annotations

import math
import string
import time
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from .. import checks
from ..errors import InvalidInputError, bad_argument

__all__ = ["words", "word_set", "distinct_n", "repetition", "coherence", "quality", "sample", "inference_speed"]

_STRIP = string.punctuation + "“”‘’"


def words(text: str) -> list[str]:
    """Whitespace-split, lower-cased words with surrounding punctuation stripped (empties dropped)."""
    out = (w.strip(_STRIP).lower() for w in text.split())
    return [w for w in out if w]


def word_set(text: str) -> frozenset[str]:
    """The vocabulary of words of a text (as :func:`words` splits them)."""
    return frozenset(words(text))


def _n(n: int) -> int:
    return checks.positive_int("n", n)


def distinct_n(seq: Sequence, n: int) -> float:
    """``|unique n-grams| / |n-grams|`` of a sequence (characters of a string, or a list of words)."""
    n = _n(n)
    grams = [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]
    return len(set(grams)) / len(grams) if grams else math.nan


def repetition(text: str, n: int = 8) -> float:
    """Share of repeated character n-grams: ``1 − distinct_n(text, n)``."""
    return 1.0 - distinct_n(text, n)


def coherence(text: str, vocabulary: Iterable[str]) -> float:
    """Share of the words of ``text`` found in ``vocabulary`` (NaN for a text without words)."""
    ws = words(text)
    vocab = vocabulary if isinstance(vocabulary, (set, frozenset)) else frozenset(vocabulary)
    return sum(w in vocab for w in ws) / len(ws) if ws else math.nan


def quality(text: str, vocabulary: Iterable[str]) -> dict[str, float]:
    """Every metric of the module docstring for one text."""
    ws = words(text)
    return {
        "distinct_2_chars": distinct_n(text, 2), "distinct_4_chars": distinct_n(text, 4),
        "distinct_1_words": distinct_n(ws, 1), "distinct_2_words": distinct_n(ws, 2),
        "repetition": repetition(text, 8), "coherence": coherence(text, vocabulary),
    }


def sample(model, corpus, prompt: str, new_tokens: int, *, temperature: float = 0.8, top_k: int | None = 200,
           seed: int = 0) -> str:
    """Text generated from ``prompt`` (characters of the corpus vocabulary), seeded; prompt excluded."""
    ids = torch.as_tensor(corpus.encode(prompt).astype(np.int64))[None]
    if ids.shape[1] == 0:
        raise bad_argument(InvalidInputError, "prompt", "at least one character", prompt)
    generator = torch.Generator().manual_seed(seed)
    out = model.generate(ids.to(next(model.parameters()).device), new_tokens, temperature=temperature, top_k=top_k, generator=generator)
    return corpus.decode(out[0, ids.shape[1]:].cpu().numpy())


def inference_speed(model, corpus, *, samples: int = 10, new_tokens: int = 500, prompt: str = " ", temperature: float = 0.8,
                    top_k: int | None = 200, seed: int = 0) -> tuple[float, list[str]]:
    """The seed's measurement: ``samples`` generations of ``new_tokens`` from ``prompt`` (no KV cache);
    tokens/s of each is ``new_tokens / wall time``; returns their plain mean and the texts."""
    samples = checks.positive_int("samples", samples)
    rates, texts = [], []
    for k in range(samples):
        start = time.perf_counter()
        texts.append(sample(model, corpus, prompt, new_tokens, temperature=temperature, top_k=top_k, seed=seed + k))
        rates.append(new_tokens / max(time.perf_counter() - start, 1e-9))
    return float(np.mean(rates)), texts
