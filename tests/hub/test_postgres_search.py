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


def _decoded(binary: bytes) -> dict[str, list[int]]:
    """A binary ``tsvector`` (as COPY takes it) read back: each lexeme's positions, in order."""
    count = int.from_bytes(binary[:4], "big")
    out: dict[str, list[int]] = {}
    at = 4
    for _ in range(count):
        end = binary.index(b"\0", at)
        word = binary[at:end].decode()
        held = int.from_bytes(binary[end + 1 : end + 3], "big")
        out[word] = [
            int.from_bytes(binary[end + 3 + 2 * i : end + 5 + 2 * i], "big") for i in range(held)
        ]
        at = end + 3 + 2 * held
    assert at == len(binary), "nothing after the last lexeme"
    return out


def _parsed(document: str) -> dict[str, list[int]]:
    """The text form of :func:`search.document` read back the same way.

    A word repeats in the text form (PostgreSQL merges its positions on input).
    """
    out: dict[str, list[int]] = {}
    for item in document.split():
        word, positions = item.rsplit(":", 1)
        out.setdefault(word.strip("'"), []).extend(int(p) for p in positions.split(","))
    return {word: sorted(held) for word, held in out.items()}


@given(
    st.lists(st.text(alphabet="abcXYZ019_-. é\tß", min_size=0, max_size=12), max_size=400),
    st.text(alphabet=st.characters(max_codepoint=0x2FF), max_size=40),
)
def test_the_binary_document_holds_the_text_documents_lexemes_in_byte_order(
    parts: list[str], data: str
) -> None:
    message = " ".join(parts)
    binary = search.binary_document(message, data)
    decoded = _decoded(binary)
    assert decoded == _parsed(search.document(message, data))
    assert list(decoded) == sorted(decoded, key=str.encode)  # the order tsvector keeps


def test_a_word_too_long_to_index_takes_no_position_in_either_form() -> None:
    long = "x" * search.MAX_WORD_BYTES
    message = f"first {long} second first"
    assert _decoded(search.binary_document(message, "")) == {"first": [1, 3], "second": [2]}
    assert _parsed(search.document(message, "")) == {"first": [1, 3], "second": [2]}
