"""Full-text search on PostgreSQL that finds what SQLite's FTS5 finds.

SQLite's ``unicode61`` tokenizer splits text into runs of letters and digits
(anything else, ``_`` included, separates words), folds case and drops
diacritics. PostgreSQL's own parser knows more kinds of token (a host name, a
path, a version number each stay one word), so a search for ``example`` would
miss ``example.com``. The hub therefore extracts the words itself, the FTS5
way, and hands PostgreSQL plain words: the ``search`` column is
``to_tsvector('simple', <words>)`` and a query is built from the same words.

The query arrives as the FTS5 query the service layer made of the user's text
(:func:`pilothouse.hub.service.events.match_query`): quoted phrases, each
optionally followed by ``*`` (a prefix). Each phrase becomes its words joined by
``<->`` (adjacent, in order), the last with ``:*`` for a prefix; every phrase
must match (``&``). A phrase without a word is ignored, as FTS5 ignores it; a
query without any matches nothing.
"""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[^\W_]+")
MAX_INDEXED_CHARS = 250_000
"""Of an event's message and data, only this much is indexed: a ``tsvector`` holds 1 MiB."""
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
    return _WORD.findall(fold(text))


def document(message: str, data: str) -> str:
    """The text to index for an event: the words of its message and its data, space-separated."""
    text = message + " " + data
    return " ".join(words(text[:MAX_INDEXED_CHARS]))


def tsquery(match: str) -> str | None:
    """The ``to_tsquery('simple', …)`` text of an FTS5 phrase query; None: it matches nothing."""
    parts = []
    for phrase, star in _PHRASE.findall(match):
        found = words(phrase.replace('""', '"'))
        if not found:
            continue
        terms = [f"'{word}'" for word in found]
        if star:
            terms[-1] += ":*"
        parts.append("(" + " <-> ".join(terms) + ")")
    return " & ".join(parts) or None
