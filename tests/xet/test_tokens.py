"""CAS tokens and fetch URL grants: signed, scoped, expiring, range-bound."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr

from app.config import Settings
from app.errors import Forbidden, Unauthorized
from app.xet import tokens

SETTINGS = Settings(secret_key=SecretStr("k" * 32))
OTHER = Settings(secret_key=SecretStr("z" * 32))
GRANT = "0123abcd.7..w"  # an encoded app.repos.grants.Grant


def test_token_round_trip_and_scopes() -> None:
    token = tokens.issue_token(GRANT, "read")
    decoded = tokens.decode_token(SETTINGS, tokens.encode_token(SETTINGS, token))
    assert decoded == token
    decoded.require("read")
    with pytest.raises(Forbidden):
        decoded.require("write")
    tokens.issue_token(GRANT, "write").require("read")  # write implies read


def test_forged_or_expired_tokens_are_refused() -> None:
    token = tokens.issue_token(GRANT, "write")
    with pytest.raises(Unauthorized):
        tokens.decode_token(SETTINGS, tokens.encode_token(OTHER, token))
    expired = tokens.CasToken(GRANT, "write", int(time.time()) - 1)
    with pytest.raises(Unauthorized, match="expired"):
        tokens.decode_token(SETTINGS, tokens.encode_token(SETTINGS, expired))


def test_fetch_grant_covers_only_its_ranges_of_its_xorb() -> None:
    xorb = "ab" * 32
    signed = tokens.sign_fetch(SETTINGS, xorb, [(0, 99), (200, 299)]).removeprefix("t=")
    tokens.check_fetch(SETTINGS, xorb, signed, 0, 99)
    tokens.check_fetch(SETTINGS, xorb, signed, 210, 220)  # any sub-range of one range
    for start, end in ((0, 100), (99, 200), (300, 300)):
        with pytest.raises(Forbidden):
            tokens.check_fetch(SETTINGS, xorb, signed, start, end)
    with pytest.raises(Forbidden):
        tokens.check_fetch(SETTINGS, "cd" * 32, signed, 0, 99)
    with pytest.raises(Forbidden):
        tokens.check_fetch(OTHER, xorb, signed, 0, 99)
