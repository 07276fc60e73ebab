"""What the edges share to read requests: api/params.py with each dialect's wording, page tokens, UFDL's FilterSpec,
and numbers written in digits Python calls digits but cannot read as a number ("³"): each answers a 400, never a
500."""

from __future__ import annotations

import pytest

from modelharbor.api.dialects.kore.routes import ADAPTER, START_FIELD, chunk_number
from modelharbor.api.filterspec import parse_filter_spec
from modelharbor.api.paging import decode_token, encode_token
from modelharbor.api.params import flag, int_param
from modelharbor.core.filters import checked_compare
from modelharbor.core.transfer.selection import _opt_int
from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.query import Comparison


def message(call) -> tuple[str, str]:
    with pytest.raises(InvalidInput) as refused:
        call()
    return str(refused.value), refused.value.code


def test_params_keep_their_own_wording_by_default():
    assert int_param("7", "limit", 10) == 7 and int_param(None, "limit", 10) == 10 and int_param("", "x", 3) == 3
    assert message(lambda: int_param("x", "limit", 10)) == ("'limit' must be an integer, not 'x'", "INVALID_INPUT")
    assert message(lambda: int_param("0", "limit", 10, low=1))[0] == "'limit' must be between 1 and 1000"
    assert flag("TRUE", "f") is True and flag("0", "f") is False and flag(None, "f", True) is True
    assert message(lambda: flag("1", "f", loose=False))[0] == "'f' must be true or false, not '1'"


@pytest.mark.parametrize(
    ("value", "wanted"),
    [
        (None, "field 'totalChunks' is required and must be an integer"),
        (True, "field 'totalChunks' is required and must be an integer"),
        ("", "field 'totalChunks' must be an integer, not ''"),
        ("+5", "field 'totalChunks' must be an integer, not '+5'"),
        (1.5, "field 'totalChunks' must be an integer, not 1.5"),
        ("0", "field 'totalChunks' must be ≥ 1"),
    ],
)
def test_kore_start_fields_answer_kores_messages(value, wanted):
    read = lambda: int_param(  # noqa: E731
        value, "totalChunks", required=True, low=1, high=None, blank_is_missing=False, digits=True, wording=START_FIELD
    )
    assert message(read) == (wanted, "INVALID_INPUT")


def test_kore_counts_take_numbers_and_their_digits():
    read = lambda v: int_param(v, "fileSize", required=True, low=0, high=None, digits=True, wording=START_FIELD)  # noqa: E731
    assert read(12) == 12 and read(" 12 ") == 12 and read("0") == 0


def test_kore_adapter_flag_and_chunk_number():
    adapter = lambda v: flag(v, "isAdapter", loose=False, blank_is_default=False, wording=ADAPTER)  # noqa: E731
    assert adapter(True) is True and adapter(" False ") is False
    for value in (None, "", "1", 1):
        assert message(lambda v=value: adapter(v))[0] == f"isAdapter must be true or false, not {value!r}"
    assert chunk_number("3") == 3 and chunk_number(" 0 ") == 0
    assert message(lambda: chunk_number(None)) == ("form field 'chunkNumber' is required", "INVALID_CHUNK_NUMBER")
    assert message(lambda: chunk_number("x")) == ("chunkNumber 'x' is not an integer", "INVALID_CHUNK_NUMBER")
    assert message(lambda: chunk_number("-1")) == ("chunkNumber '-1' is negative", "INVALID_CHUNK_NUMBER")


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
