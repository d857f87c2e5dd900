"""Password policy and hashing; cursor integrity."""
from __future__ import annotations

import pytest

from chalicelib import cursor
from chalicelib.accounts import passwords
from chalicelib.errors import Refused, ValidationFailed


def test_hashes_are_argon2id_salted_and_verify():
    first = passwords.hash_password("a long enough passphrase")
    second = passwords.hash_password("a long enough passphrase")
    assert first.startswith("$argon2id$") and first != second
    assert passwords.verify_password(first, "a long enough passphrase")
    assert not passwords.verify_password(first, "a long enough passphrasE")


def test_verification_without_a_stored_hash_fails_but_does_the_work():
    assert passwords.verify_password(None, "anything at all") is False


def test_a_corrupt_stored_hash_fails_closed():
    assert passwords.verify_password("$argon2id$garbage", "anything at all") is False


@pytest.mark.parametrize("password", ["short", "x" * 9, "x" * 257])
def test_passwords_outside_the_schema_length_are_invalid(password):
    with pytest.raises(ValidationFailed) as refused:
        passwords.check_policy(password)
    assert "password" in refused.value.details["fields"]


def test_the_length_is_counted_as_sent_as_the_schema_counts_it():
    # Given 10 code points that NFKC composes into 5 ("e" + combining acute → "é")
    decomposed = "e\u0301" * 5
    # Then the policy counts 10, like the Password type's minLength (no 400 for valid data)
    passwords.check_policy(decomposed)


@pytest.mark.parametrize("password", ["1234567890", "Password123", "QWERTYUIOP"])
def test_common_passwords_are_refused_by_rule(password):
    with pytest.raises(Refused) as refused:
        passwords.check_policy(password)
    assert refused.value.code == "weak_password"
    assert "password" in refused.value.details["fields"]


def test_the_email_or_its_local_part_is_refused_as_password():
    with pytest.raises(Refused):
        passwords.check_policy("ann.lee.writer", "ann.lee.writer@example.com")


def test_a_long_unusual_passphrase_is_accepted():
    passwords.check_policy("violet tractor umbrella 42", "ann@example.com")


def test_a_cursor_round_trips_within_its_scope(aws):
    position = {"pk": {"S": "USER#1"}, "sk": {"S": "PROFILE"}}
    text = cursor.encode(position, "scope-a")
    assert "USER#1" not in text
    assert cursor.decode(text, "scope-a") == position
    assert cursor.encode(None, "scope-a") is None and cursor.decode(None, "scope-a") is None


@pytest.mark.parametrize("mangle", [
    lambda c: c + "x",
    lambda c: "A" + c[1:],
    lambda c: c.split(".")[0],
    lambda c: "garbage",
])
def test_a_tampered_cursor_is_refused(aws, mangle):
    text = cursor.encode({"pk": {"S": "USER#1"}}, "scope-a")
    with pytest.raises(cursor.InvalidCursor):
        cursor.decode(mangle(text), "scope-a")


def test_a_cursor_from_another_listing_is_refused(aws):
    text = cursor.encode({"pk": {"S": "USER#1"}}, "scope-a")
    with pytest.raises(cursor.InvalidCursor):
        cursor.decode(text, "scope-b")
