"""The words the PostgreSQL store indexes: its fast path for ASCII text finds what FTS5 would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pilothouse.hub.store.postgres import search


def _slow_words(text: str) -> list[str]:
    """The reference: FTS5's unicode61 words, by the regular expression, for any text."""
    return search._WORD.findall(search.fold(text))


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_text_splits_into_the_words_of_the_regular_expression(text: str) -> None:
    assert search.words(text) == _slow_words(text)


@given(st.text())
def test_any_text_splits_into_the_words_of_the_regular_expression(text: str) -> None:
    assert search.words(text) == _slow_words(text)


@given(st.lists(st.text(alphabet="abcXYZ019_-. é\t", min_size=0, max_size=12), max_size=400))
def test_a_document_lists_each_word_at_its_position(parts: list[str]) -> None:
    text = " ".join(parts)
    found = search.words(text)
    document = search.document(text, "")
    if len(found) > search.MAX_POSITIONS:
        return  # the long path, checked against PostgreSQL itself (test_postgres_store)
    assert document.split() == [f"'{word}':{n}" for n, word in enumerate(found, 1)]
