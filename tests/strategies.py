"""Hypothesis strategies for the API's inputs, built from the domain catalogue.

For every product and target field: values a form would send (in range, near the limits),
values of the right type that break a rule, and values of the wrong type altogether, the
odd ones included: lone surrogates, emoji, non-ASCII digits, exponents, huge numbers.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import strategies as st

from services.catalog import FieldKind, ProductField, TargetField, choice_sets

# Characters of every category, lone surrogates (Cs) included: JSON can carry them.
ANY_CHARACTER = st.characters(codec=None, exclude_categories=())
ODD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\ud800",
        "a\udfffb",
        "\U0001f600" * 13,
        "\u0662\u0660\u0662\u0666",  # Arabic-Indic 2026
        "２０２６",  # noqa: RUF001 - fullwidth digits
        "straße",
        "\x00",
        "line\nbreak",
        "http://[::1/a.b",
        "https://example.org:99999/a.png",
        "1e27",
        "1_000",
        "-0.0",
        "NaN",
        "Infinity",
        "9" * 400,
    ]
)
WRONG_TYPE = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    ODD_TEXT,
)
# What JSON gives for a number: floats of every size, and exact decimal strings.
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=None).map(str),
    st.sampled_from([-0.0, 0, 0.01, 0.001, 1e26, 1e308, 5e-324, "0.10", "12,50", "1e27"]),
)


def _text(field: ProductField) -> st.SearchStrategy[Any]:
    top = field.max_length or 50
    lengths = st.integers(min_value=0, max_value=top + 2)
    plain = lengths.flatmap(lambda n: st.text(alphabet="ABCxyz019-_ ", min_size=n, max_size=n))
    emoji = lengths.flatmap(lambda n: st.just("\U0001f600" * (n // 2 + 1)))
    return st.one_of(plain, emoji, st.text(ANY_CHARACTER, max_size=30), ODD_TEXT)


def _url(field: ProductField) -> st.SearchStrategy[Any]:
    path = st.text(alphabet="abc/.-_%?=&#", max_size=30)
    urls = st.builds(
        lambda scheme, host, tail: f"{scheme}://{host}/{tail}",
        st.sampled_from(["http", "https", "ftp", "HTTP", "javascript"]),
        st.sampled_from(["example.org", "localhost", "[::1]", "[::1", "a.b:99999", "xn--d.e"]),
        path,
    )
    return st.one_of(urls, _text(field))


def _choice(field: ProductField | TargetField) -> st.SearchStrategy[Any]:
    names = [c.name for c in choice_sets()[field.choices or ""]]
    return st.one_of(
        st.sampled_from(names),
        st.sampled_from(names).map(str.lower),
        st.integers(min_value=-1, max_value=200),  # the old REST API's numbers
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_", min_size=1, max_size=12),
    )


def _date() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.dates(min_value=date(1, 1, 1)).map(date.isoformat),
        st.sampled_from(["2026-02-30", "20260131", "2026-W05-1", "2026-1-5", "2026-01-01T00:00"]),
    )


_GOOD = {
    FieldKind.MONEY: NUMBERS,
    FieldKind.PERCENT: NUMBERS,
    FieldKind.INTEGER: st.integers(min_value=-(2**33), max_value=2**33),
    FieldKind.BOOLEAN: st.booleans(),
}


def product_value(field: ProductField) -> st.SearchStrategy[Any]:
    """Return values to send as *field* of ProductInput: good, rule-breaking, ill-typed."""
    if field.kind is FieldKind.TEXT:
        own = _text(field)
    elif field.kind is FieldKind.URL:
        own = _url(field)
    elif field.kind is FieldKind.CHOICE:
        own = _choice(field)
    elif field.kind is FieldKind.DATE:
        own = _date()
    else:
        own = _GOOD[field.kind]
    return st.one_of(own, own, st.none(), WRONG_TYPE)


def target_value(field: TargetField) -> st.SearchStrategy[Any]:
    """Return values to send as *field* of AudienceTargetInput."""
    names = [c.name for c in choice_sets()[field.choices]]
    selections = st.lists(st.sampled_from(names), max_size=field.max_items + 3)
    return st.one_of(
        selections,
        selections,
        st.none(),
        st.lists(_choice(field), max_size=4),
        _choice(field),  # a single value where a list is expected (GraphQL accepts it)
        WRONG_TYPE,
    )
