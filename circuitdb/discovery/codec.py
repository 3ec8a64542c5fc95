"""Tokenizers as discovery sees them: text to ids, a single-token answer to its id, ids back to text."""

from __future__ import annotations

from typing import Any, Protocol

from circuitdb.errors import CircuitdbError


class Codec(Protocol):
    """What discovery needs from any tokenizer; `bos` is the id to prepend, or None when the model takes no BOS."""

    name: str
    bos: int | None

    def encode(self, text: str) -> list[int]:
        """The token ids of `text`, without BOS."""
        ...

    def token_id(self, word: str) -> int:
        """The id of the single token `word` (an answer such as " 5"); CircuitdbError if it is not one token."""
        ...

    def decode(self, ids: list[int]) -> str:
        """The text of `ids`."""
        ...


class WordCodec:
    """The toy model's whitespace word-level tokenizer over a fixed vocabulary."""

    def __init__(self, vocab: list[str], name: str) -> None:
        self.vocab = list(vocab)
        self.name = name
        self.ids = {word: i for i, word in enumerate(self.vocab)}
        self.bos: int | None = self.ids.get("<bos>")  # a vocabulary without one: prompts start as they are

    def _id(self, word: str) -> int:
        """The id of one vocabulary word; unknown words are a user error naming the word."""
        if word not in self.ids:
            raise CircuitdbError(f"word {word!r} is not in the vocabulary of {self.name}")
        return self.ids[word]

    def encode(self, text: str) -> list[int]:
        """The ids of the whitespace-separated words of `text`."""
        return [self._id(word) for word in text.split()]

    def token_id(self, word: str) -> int:
        """The id of `word` with surrounding whitespace stripped (" 5" and "5" are the same token)."""
        stripped = word.strip()
        if not stripped or len(stripped.split()) != 1:
            raise CircuitdbError(f"answer {word!r} is not a single token of {self.name}")
        return self._id(stripped)

    def decode(self, ids: list[int]) -> str:
        """The words of `ids` joined by single spaces."""
        return " ".join(self.vocab[i] for i in ids)


class HFCodec:
    """A Hugging Face tokenizer (e.g. `HookedTransformer.tokenizer`) behind the Codec interface."""

    def __init__(self, tokenizer: Any, name: str, prepend_bos: bool) -> None:
        self.tokenizer = tokenizer
        self.name = name
        self.bos: int | None = tokenizer.bos_token_id if prepend_bos else None

    def encode(self, text: str) -> list[int]:
        """The tokenizer's ids for `text`, without special tokens."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def token_id(self, word: str) -> int:
        """The id of `word` if it encodes to exactly one token (leading space included, as the model sees it)."""
        ids = self.encode(word)
        if len(ids) != 1:
            raise CircuitdbError(f"answer {word!r} is not a single token of {self.name}")
        return ids[0]

    def decode(self, ids: list[int]) -> str:
        """The tokenizer's text for `ids`."""
        return self.tokenizer.decode(ids)
