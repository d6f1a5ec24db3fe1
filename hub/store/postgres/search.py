"""Full-text search on PostgreSQL that finds what SQLite's FTS5 finds.

SQLite's ``unicode61`` tokenizer splits text into runs of letters and digits
(anything else, ``_`` included, separates words), folds case and drops
diacritics. PostgreSQL's own parser knows more kinds of token (a host name, a
path, a version number each stay one word), so a search for ``example`` would
miss ``example.com``; and which characters it takes for letters depends on the
database's locale. The hub therefore extracts the words itself, the FTS5 way,
and hands PostgreSQL the ``tsvector`` itself, as its text (``'word':1
'other':2 'word':3``, each word at its position): the ``search`` column is
``<document>::tsvector``. Nothing is parsed again in the database (its text
parser was a sixth of the database's work of an ingest), and a query is a
``tsquery`` of the same words, ``<query>::tsquery``, so both sides hold exactly
the hub's words whatever the locale. The result is what ``to_tsvector('simple',
…)`` of the words made before (rows stored that way are found the same): the
same lexemes at the same positions, a word of ``MAX_WORD_BYTES`` or more left
out without taking a position, positions beyond ``MAX_POSITION`` counted as it,
``MAX_POSITIONS`` of one word kept.

The query arrives as the FTS5 query the service layer made of the user's text
(:func:`pilothouse.hub.service.events.match_query`): quoted phrases, each
optionally followed by ``*`` (a prefix). Each phrase becomes its words joined by
``<->`` (adjacent, in order), the last with ``:*`` for a prefix; every phrase
must match (``&``). A phrase without a word is ignored, as FTS5 ignores it; a
query without any matches nothing.
"""

from __future__ import annotations

import operator
import re
import struct
import unicodedata
from collections.abc import Callable, Sequence
from typing import TypeVar

_WORD = re.compile(r"[^\W_]+")
_SEPARATORS = bytes(c for c in range(128) if not chr(c).isalnum())
"""Every ASCII character that is not a letter or digit."""
_ASCII_SEPARATORS = str.maketrans(_SEPARATORS.decode(), " " * len(_SEPARATORS))
"""Each of them to a space: the words of ASCII text are then what ``str.split`` finds
(several times faster than the regular expression)."""
_ASCII_SEPARATOR_BYTES = bytes.maketrans(_SEPARATORS, b" " * len(_SEPARATORS))
"""The same for bytes."""
MAX_INDEXED_CHARS = 250_000
"""Of an event's message and data, only this much is indexed: a ``tsvector`` holds 1 MiB."""
MAX_WORD_BYTES = 2047
"""PostgreSQL indexes no word this long (UTF-8 bytes) or longer (its ``MAXSTRLEN``)."""
MAX_POSITION = 16383
"""The largest position a ``tsvector`` holds; later words are all at this one."""
MAX_POSITIONS = 255
"""Positions ``to_tsvector`` keeps of one word (the first ones; a ``tsvector``'s text keeps 256)."""
_AFTER = tuple(f"':{position} '" for position in range(1, MAX_POSITIONS + 1))
"""What follows the n-th word in a ``tsvector``'s text: its position, the next one's quote."""
_W = TypeVar("_W", str, bytes)
_PHRASE = re.compile(r'"((?:[^"]|"")*)"(\*?)')


def fold(text: str) -> str:
    """Lower case without diacritics (``Café`` → ``cafe``), as FTS5's unicode61 does."""
    lowered = text.lower()
    if lowered.isascii():
        return lowered
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    """The words FTS5 would index in ``text``."""
    folded = fold(text)
    if folded.isascii():
        return folded.translate(_ASCII_SEPARATORS).split()
    return _WORD.findall(folded)


def document(message: str, data: str) -> str:
    """The ``tsvector`` of an event, as text: the words of its message and data, positioned."""
    text = (message + " " + data)[:MAX_INDEXED_CHARS]
    found = words(text)
    # Words are letters and digits only: nothing in them needs escaping between quotes. A
    # text shorter than a word may be long has no word too long (and most texts are).
    short = len(text) * 4 < MAX_WORD_BYTES or max(map(len, found), default=0) * 4 < MAX_WORD_BYTES
    if len(found) > MAX_POSITIONS or not short:
        return _long_document(found)
    if not found:
        return ""
    # 'w1':1 'w2':2 … as the words with a separator ("':1 '", "':2 '", …) after each.
    return "'" + "".join(map(operator.add, found, _AFTER))[:-2]


def _long_document(found: list[str]) -> str:
    """:func:`document` of many or long words, with every limit of ``to_tsvector`` applied."""
    positions = _positions(found, _utf8_size)
    return " ".join(f"'{word}':{','.join(map(str, held))}" for word, held in positions.items())


def _positions(found: Sequence[_W], size: Callable[[_W], int]) -> dict[_W, list[int]]:
    """Each word's positions, with every limit of ``to_tsvector`` applied (``size``: its bytes)."""
    kept = [word for word in found if size(word) < MAX_WORD_BYTES]
    positions: dict[_W, list[int]] = {}
    for position, word in enumerate(kept, 1):
        held = positions.setdefault(word, [])
        at = min(position, MAX_POSITION)
        if len(held) < MAX_POSITIONS and (not held or held[-1] != at):
            held.append(at)
    return positions


def binary_document(message: str, data: str) -> bytes:
    """:func:`document` in PostgreSQL's binary ``tsvector`` format (what ``COPY … BINARY`` sends).

    The same lexemes at the same positions, so the server has nothing to parse: the
    number of lexemes, then each lexeme (UTF-8, NUL-terminated, in byte order and
    unique, as ``tsvector`` keeps them: the server need not sort) with its count of
    positions and the positions (ascending, weight D: the top two bits clear).
    Code point order is UTF-8's byte order, so the words sort as strings.
    """
    text = (message + " " + data)[:MAX_INDEXED_CHARS]
    found = utf8_words(text)
    if len(found) > MAX_POSITIONS or max(map(len, found), default=0) >= MAX_WORD_BYTES:
        positions = _positions(found, len)
    else:  # every word is kept, at its own position
        positions = {}
        for position, word in enumerate(found, 1):
            held = positions.get(word)
            if held is None:
                positions[word] = [position]
            else:
                held.append(position)
    parts = [_COUNT.pack(len(positions))]
    append = parts.append
    for word in sorted(positions):  # bytes order: what tsvector keeps
        held = positions[word]
        append(word)
        append(_AT[held[0]] if len(held) == 1 else _held(held))
    return b"".join(parts)


def utf8_words(text: str) -> list[bytes]:
    """:func:`words` of ``text``, each as its UTF-8 bytes.

    ASCII text (most events) is folded and split as bytes: a 256-byte
    translation table and ``bytes.split`` in C, with nothing to encode after.
    """
    if text.isascii():
        return text.encode().lower().translate(_ASCII_SEPARATOR_BYTES).split()
    return [word.encode() for word in words(text)]


def _utf8_size(word: str) -> int:
    return len(word.encode())


_COUNT = struct.Struct("!i")
_AT = tuple(b"\0" + struct.pack("!HH", 1, position) for position in range(MAX_POSITION + 1))
"""A lexeme's end and its one position, in the binary form: each position's, made once."""


def _held(held: list[int]) -> bytes:
    return b"\0" + struct.pack(f"!H{len(held)}H", len(held), *held)


def tsquery(match: str) -> str | None:
    """The ``tsquery`` text of an FTS5 phrase query; None: it matches nothing."""
    parts = []
    for phrase, star in _PHRASE.findall(match):
        # As in the documents: a word too long to index is left out (the literal would fail).
        found = [w for w in words(phrase.replace('""', '"')) if len(w.encode()) < MAX_WORD_BYTES]
        if not found:
            continue
        terms = [f"'{word}'" for word in found]
        if star:
            terms[-1] += ":*"
        parts.append("(" + " <-> ".join(terms) + ")")
    return " & ".join(parts) or None
