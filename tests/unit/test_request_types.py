"""The request types hold every rule the document states, and decode as JSON Schema reads."""
from __future__ import annotations

import re

import msgspec
import pytest

from chalicelib.accounts.schemas import DISPLAY_NAME_PATTERN, EMAIL_PATTERN, RegisterIn
from chalicelib.catalog.schemas import UploadIn
from chalicelib.errors import ValidationFailed
from chalicelib.payments.schemas import CheckoutIn
from chalicelib.web import decode_body


def test_an_integral_float_is_an_integer_as_json_schema_says():
    # Given 2500.0, which JSON Schema's "integer" accepts
    body = decode_body(b'{"items": [{"resource_id": "r1"}], "points_to_redeem": 2.0}',
                       CheckoutIn)
    # Then it decodes as the integer
    assert body.points_to_redeem == 2 and isinstance(body.points_to_redeem, int)


def test_a_fractional_number_for_an_integer_is_still_invalid_and_named():
    with pytest.raises(ValidationFailed) as refused:
        decode_body(b'{"items": [{"resource_id": "r1"}], "points_to_redeem": 2.5}', CheckoutIn)
    assert "points_to_redeem" in refused.value.details["fields"]


def test_checkout_items_listed_twice_are_invalid_input_naming_items():
    with pytest.raises(ValidationFailed) as refused:
        decode_body(b'{"items": [{"resource_id": "r1"}, {"resource_id": "r1"}]}', CheckoutIn)
    assert "items" in refused.value.details["fields"]


@pytest.mark.parametrize("name", ["bad\x07bell", "zero\u200bwidth", "\u202eevil", "   ",
                                  "line\nbreak"])
def test_display_names_with_control_or_invisible_characters_are_invalid(name):
    raw = msgspec.json.encode({"email": "a@example.com", "password": "long enough pass",
                               "display_name": name})
    with pytest.raises(ValidationFailed):
        decode_body(raw, RegisterIn)


def test_a_display_name_in_any_script_is_valid():
    assert re.search(DISPLAY_NAME_PATTERN, "小王 Ann-Lee")


@pytest.mark.parametrize("email", ["a\x1f@example.com", "a b@x.cd"])
def test_white_space_inside_an_email_is_invalid_in_both_regex_dialects(email):
    # \x1f is white space to Python, not to ECMA 262: the pattern spells white space out
    assert not re.search(EMAIL_PATTERN, email)


def test_a_cover_must_be_an_image_in_the_document_as_in_the_code():
    rules = UploadIn.json_schema_extra["allOf"]
    cover = next(r for r in rules if r["if"]["properties"]["purpose"]["const"] == "cover")
    assert cover["then"]["properties"]["content_type"]["enum"] == [
        "image/jpeg", "image/png", "image/webp"]
