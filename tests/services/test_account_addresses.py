"""An account's own address follows the same rules as a recipient's (webapp/adapters/mime/addresses.py)."""

from __future__ import annotations

import pytest

from webapp.adapters.mime import addresses
from webapp.services.account import accounts
from webapp.services.account.accounts import AccountSettings
from webapp.services.errors import Invalid

ACCEPTED = ["alice@example.test", "dev@localhost", "x@exämple.test", "jü@bücher.de", "o'brien+tag@mail.example.com"]
REFUSED = [
    "not-an-address",
    "a@",
    "@example.test",
    "a@b..c",
    "a@-x.test",
    "a@x_y.test",
    "a b@example.test",
    "Bob <bob@example.test>",
    "a@example.test, b@example.test",
    "a@example.test\r\nBcc: x@y.test",
    "=?utf-8?q?a?=@example.test",
    "x" * 65 + "@example.test",
]


def _settings(address: str) -> AccountSettings:
    return AccountSettings(
        name="Work", address=address, username="alice", password="pw", incoming_protocol="imap",
        incoming_security="tls", incoming_host="127.0.0.1", incoming_port=993, outgoing_host="127.0.0.1",
        outgoing_port=587, outgoing_security="starttls",
    )  # fmt: skip


@pytest.mark.parametrize("address", ACCEPTED)
def test_usable_addresses_are_accepted_for_accounts_and_recipients(address: str) -> None:
    accounts.validate(_settings(address))
    assert addresses.parse_list(address) == (addresses.Mailbox(address),)


@pytest.mark.parametrize("address", REFUSED)
def test_garbage_is_refused_for_accounts(address: str) -> None:
    with pytest.raises(Invalid, match="^address: .* is not an email address"):
        accounts.validate(_settings(address))
    with pytest.raises(addresses.AddressError):
        addresses.check_address(address)


def test_the_account_form_takes_a_dotless_address(make_account) -> None:
    assert make_account(address="dev@localhost").address == "dev@localhost"
