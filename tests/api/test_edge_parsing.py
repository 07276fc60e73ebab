"""What the edges share to read requests: page tokens, UFDL's FilterSpec, and numbers written in digits Python calls
digits but cannot read as a number ("³"): each answers a 400, never a 500."""

from __future__ import annotations

import pytest

from modelharbor.api.filterspec import parse_filter_spec
from modelharbor.api.paging import decode_token, encode_token
from modelharbor.core.filters import checked_compare
from modelharbor.core.transfer.selection import _opt_int
from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.query import Comparison


def message(call) -> tuple[str, str]:
    with pytest.raises(InvalidInput) as refused:
        call()
    return str(refused.value), refused.value.code


def test_page_tokens_are_strings():
    assert decode_token(None) == decode_token("") == 0 and decode_token(encode_token(20)) == 20
    for bad in (0, False, [], {}, 5, "garbage"):
        assert message(lambda b=bad: decode_token(b))[0].startswith("Invalid page token")


@pytest.mark.parametrize(
    "spec",
    [
        {"expressions": [{"type": {}, "field": "name"}]},
        {"expressions": [{"type": ["exact"], "field": "name", "value": 1}]},
        {
            "expressions": [
                {"type": "or", "sub_expressions": [{"type": {}}, {"type": "exact", "field": "a", "value": 1}]}
            ]
        },
    ],
)
def test_a_filter_expression_type_that_is_no_string_is_refused(spec):
    assert message(lambda: parse_filter_spec(spec))[1] == "INVALID_FILTER"


def test_superscript_digits_are_no_number():
    assert "³".isdigit() and not "³".isdecimal()
    assert message(lambda: checked_compare(None, Comparison("pk", "=", "³"), "sqlite", kind="int"))[0].startswith(
        "Invalid filter: pk takes a number"
    )
    assert message(lambda: _opt_int("³", "minimum_instances", 0, 20))[0].startswith("'minimum_instances' must be")
    assert _opt_int(" 3 ", "minimum_instances", 0, 20) == 3
