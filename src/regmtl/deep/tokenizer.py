r"""A simple word tokenizer for raw texts: lower-case, split into words, a vocabulary of the
most frequent words, padded token ids.

What the scikit-learn wrappers apply to a 1-D array (or list, or Series) of strings
(``input_kind="text"``): the texts become token ids that a :class:`~regmtl.deep.TextTrunk`
pools. Every text is lower-cased (``lowercase``) and split into the words the regular
expression ``\w+`` finds (letters, digits, underscores; Unicode). At fit, the vocabulary is
the ``max_size`` most frequent words seen at least ``min_count`` times (ties: the word seen first),
and word :math:`k` of it gets id :math:`k + 1`:

=============  ==============================================================
id             meaning
=============  ==============================================================
0              padding (after the last word of a text; not a token)
1 .. K         the K words of the vocabulary, the most frequent first
K + 1          any other word (out of vocabulary; ``oov_id``)
=============  ==============================================================

A text is cut after its first ``max_length`` words; the ids of n texts are an (n, L) int64
array, L the longest text's length (at most ``max_length``, at least 1). The vocabulary is
plain JSON (:meth:`Tokenizer.to_json`) and is checked in full when read back
(:meth:`Tokenizer.from_json`): a word the tokenizer could not have produced, a repeated word,
or more words than ``max_size`` is refused.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["Tokenizer", "TOKEN_PATTERN"]

#: the words of a text: runs of letters, digits and underscores (Unicode)
TOKEN_PATTERN = re.compile(r"\w+")
_OPTIONS = ("lowercase", "min_count", "max_size", "max_length")
_MAX = 2**31 - 2


def _option(name: str, value: Any) -> Any:
    """An option checked: ``lowercase`` a bool, the others ints in their range."""
    if name == "lowercase":
        if not isinstance(value, bool | np.bool_):
            raise ValueError("tokenizer option lowercase must be True or False, got "
                             f"{value!r:.40}.")
        return bool(value)
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not (
            1 <= int(value) <= _MAX):
        raise ValueError(f"tokenizer option {name} must be an int in [1, {_MAX}], got "
                         f"{value!r:.40}.")
    return int(value)


class Tokenizer:
    """Texts as padded word ids over a vocabulary learned from the training texts.

    Parameters
    ----------
    lowercase : bool, default=True
        Lower-case every text before splitting it.
    min_count : int, default=1
        A word enters the vocabulary if seen at least this many times at fit.
    max_size : int, default=20000
        At most this many words (the most frequent).
    max_length : int, default=256
        Words kept per text (the first ones).

    Attributes
    ----------
    words : list of str
        The vocabulary, most frequent first (after :meth:`fit`); word ``words[k]`` has id
        ``k + 1``.
    n_ids : int
        K + 1: the ids 0 (padding) to K; ``TextTrunk(vocab_size=n_ids, padding_idx=0)``
        reads them, and reads ``oov_id`` = K + 1 as its out-of-vocabulary bucket.

    Examples
    --------
    >>> from regmtl.deep.tokenizer import Tokenizer
    >>> tok = Tokenizer(min_count=2).fit(["The cat sat.", "the dog sat", "A cat!"])
    >>> tok.words  # seen twice each: in the order first seen
    ['the', 'cat', 'sat']
    >>> tok.transform(["the cat ran", "cat"]).tolist()  # "ran": out of vocabulary (K + 1)
    [[1, 2, 4], [2, 0, 0]]
    """

    PADDING_ID = 0

    def __init__(self, *, lowercase: bool = True, min_count: int = 1, max_size: int = 20000,
                 max_length: int = 256):
        self.lowercase = _option("lowercase", lowercase)
        self.min_count = _option("min_count", min_count)
        self.max_size = _option("max_size", max_size)
        self.max_length = _option("max_length", max_length)
        self.words: list[str] = []
        self._ids: dict[str, int] = {}

    @classmethod
    def from_options(cls, options: Any) -> Tokenizer:
        """A tokenizer from the wrappers' ``tokenizer`` parameter (None or a dict of options)."""
        if options is None:
            return cls()
        if not isinstance(options, dict) or not set(options) <= set(_OPTIONS):
            unknown = sorted(set(options) - set(_OPTIONS)) if isinstance(options, dict) else []
            raise ValueError(f"tokenizer must be None or a dict of options among {_OPTIONS}; "
                             f"got {(unknown or [options])[0]!r:.60}.")
        return cls(**options)

    @property
    def n_ids(self) -> int:
        return len(self.words) + 1

    @property
    def oov_id(self) -> int:
        return len(self.words) + 1

    def split(self, text: str) -> list[str]:
        """The words of one text."""
        return TOKEN_PATTERN.findall(text.lower() if self.lowercase else text)

    def fit(self, texts: Iterable[str]) -> Tokenizer:
        """Learn the vocabulary: the ``max_size`` most frequent words seen ``min_count``
        times or more (ties: the word first seen first)."""
        counts: Counter = Counter()
        for text in texts:
            counts.update(self.split(text))
        kept = [w for w, c in counts.most_common() if c >= self.min_count][: self.max_size]
        self._set_words(kept)
        return self

    def _set_words(self, words: list[str]) -> None:
        self.words = list(words)
        self._ids = {w: k + 1 for k, w in enumerate(self.words)}

    def transform(self, texts: Iterable[str]) -> np.ndarray:
        """The (n, L) int64 ids of the texts, padded with 0 after each text's words."""
        oov, ids = self.oov_id, self._ids
        rows = [[ids.get(w, oov) for w in self.split(t)[: self.max_length]] for t in texts]
        out = np.zeros((len(rows), max([1, *map(len, rows)])), dtype=np.int64)
        for i, r in enumerate(rows):
            out[i, : len(r)] = r
        return out

    def to_json(self) -> dict:
        """The options and the vocabulary as plain JSON."""
        return {**{k: getattr(self, k) for k in _OPTIONS}, "words": list(self.words)}

    @classmethod
    def from_json(cls, value: Any) -> Tokenizer:
        """A tokenizer written by :meth:`to_json`, checked in full.

        Raises
        ------
        ValueError
            If an option is absent or out of range, or the vocabulary is not a list of
            distinct words the tokenizer produces (each a full match of ``\\w+``, lower-case
            with ``lowercase``), at most ``max_size`` of them.
        """
        if not isinstance(value, dict) or set(value) != {*_OPTIONS, "words"}:
            raise ValueError(f"the vocabulary must be a dict of {_OPTIONS} and 'words'.")
        tok = cls(**{k: value[k] for k in _OPTIONS})
        words = value["words"]
        if not isinstance(words, list) or len(words) > tok.max_size:
            raise ValueError(f"the vocabulary's words must be a list of at most max_size="
                             f"{tok.max_size} words.")
        for w in words:
            if (not isinstance(w, str) or TOKEN_PATTERN.fullmatch(w) is None
                    or (tok.lowercase and w != w.lower())):
                raise ValueError(f"the vocabulary holds {w!r:.40}, which the tokenizer cannot "
                                 "produce (a word is a run of letters, digits and underscores"
                                 f"{', lower-case' if tok.lowercase else ''}).")
        if len(set(words)) != len(words):
            raise ValueError("the vocabulary repeats a word.")
        tok._set_words(words)
        return tok
