"""The setup wizard's state: every answer so far, carried from step to step in the form itself (nothing is
saved until the end), read back and checked at each step.

The password is never written back into the page: the step that asks for it turns it into a token
encrypted with the app's keys (``password_token``, views/accountinput.py), which only this server reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace

from werkzeug.datastructures import MultiDict

from webapp.adapters.mail.endpoint import DEFAULT_PORTS
from webapp.adapters.mime import addresses
from webapp.models.account import LOGIN_FORMATS
from webapp.services.account import accounts
from webapp.services.account.accounts import AccountSettings
from webapp.services.account.setup import Suggestion
from webapp.services.errors import ConnectorError, Invalid
from webapp.views.accountinput import unseal_password

STEPS = ("Address and sign-in", "Mailbox", "Servers", "Test and save")
MAX_CARRIED_JSON = 50_000  # what discovery found is a few KiB: more was not written by this server


@dataclass
class WizardState:
    address: str = ""
    auth_method: str = "password"
    mailbox_kind: str = "primary"  # or "shared"
    password_token: str = field(default="", repr=False)
    primary_account_id: str = ""
    login_format: str = "exchange"
    receive: str = "1"
    send: str = "1"
    username: str = ""
    incoming_protocol: str = "imap"
    incoming_security: str = "tls"
    incoming_host: str = ""
    incoming_port: str = ""
    folder: str = "INBOX"
    outgoing_host: str = ""
    outgoing_security: str = "starttls"
    outgoing_port: str = ""
    smtp_auth: str = "login"
    tls_verify: str = "system"
    ca_cert_pem: str = ""
    incoming_source: str = ""  # where the incoming server's settings came from (shown beside them)
    outgoing_source: str = ""
    found: str = ""  # the suggestions, as JSON
    problems: str = ""  # what discovery could not ask, as JSON
    looked_up: str = ""  # the address (and primary) the suggestions are for
    choice: str = "0"
    name: str = ""
    display_name: str = ""

    @classmethod
    def from_form(cls, form: MultiDict[str, str]) -> WizardState:
        """The state the page sent; a checkbox sends "0" (a hidden input) and "1" when ticked: last wins."""
        values = {}
        for f in fields(cls):
            sent = form.getlist(f.name)
            if sent:
                values[f.name] = sent[-1][:100_000]
        return cls(**values)

    def carried(self, shown: set[str]) -> list[tuple[str, str]]:
        """The hidden inputs of a step: every answer but those the step shows."""
        return [(f.name, getattr(self, f.name)) for f in fields(self) if f.name not in shown]

    @property
    def shared(self) -> bool:
        """A shared mailbox, reached through a primary account."""
        return self.mailbox_kind == "shared"

    @property
    def receives(self) -> bool:
        """Receiving is switched on."""
        return self.receive == "1"

    @property
    def sends(self) -> bool:
        """Sending is switched on."""
        return self.send == "1"

    def suggestions(self) -> list[Suggestion]:
        """What discovery found (carried as JSON; a tampered value counts as nothing found)."""
        if len(self.found) > MAX_CARRIED_JSON:
            return []
        try:
            return [Suggestion.from_dict(item) for item in json.loads(self.found or "[]")]
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            return []

    def problem_list(self) -> list[str]:
        """What discovery could not ask, in words."""
        if len(self.problems) > MAX_CARRIED_JSON:
            return []
        try:
            return [str(problem) for problem in json.loads(self.problems or "[]")]
        except (ValueError, TypeError, RecursionError):
            return []

    def lookup_key(self) -> str:
        """What the servers were looked up for: a new address (or primary) looks them up again."""
        return f"{self.address.strip()}|{self.primary_account_id if self.shared else ''}"

    def with_suggestions(self, found: list[Suggestion], problems: list[str]) -> WizardState:
        """The state carrying a new discovery's findings."""
        return replace(
            self,
            found=json.dumps([s.as_dict() for s in found]),
            problems=json.dumps(problems),
            looked_up=self.lookup_key(),
            choice="0",
        )

    def applying(self, index: int) -> WizardState:
        """The state with the servers of suggestion ``index`` filled in (each marked with its source)."""
        found = self.suggestions()
        if not 0 <= index < len(found):
            return replace(self, incoming_source="", outgoing_source="")
        chosen = found[index]
        state = replace(self, choice=str(index))
        if chosen.incoming is not None:
            state = replace(
                state,
                incoming_protocol=chosen.incoming.protocol,
                incoming_security=chosen.incoming.security,
                incoming_host=chosen.incoming.host,
                incoming_port=str(chosen.incoming.port),
                incoming_source=chosen.label,
            )
        if chosen.outgoing is not None:
            state = replace(
                state,
                outgoing_security=chosen.outgoing.security,
                outgoing_host=chosen.outgoing.host,
                outgoing_port=str(chosen.outgoing.port),
                outgoing_source=chosen.label,
            )
        login = next((s.username for s in (chosen.incoming, chosen.outgoing) if s is not None and s.username), "")
        if login and not self.shared:
            state = replace(state, username=login)
        # A side the configuration does not have (an SMTP-only relay, say) is switched off.
        return replace(state, receive="1" if chosen.incoming else "0", send="1" if chosen.outgoing else "0")

    # --- the checks of each step --------------------------------------------------------------------------

    def check_address(self) -> None:
        """Step 1: an address, and a sign-in this version can do."""
        try:
            addresses.check_address(self.address.strip())
        except addresses.AddressError as exc:
            raise Invalid(f"address: {self.address!r} is not an email address ({exc})") from None
        if self.auth_method != "password":
            raise Invalid("sign-in: Microsoft Entra ID (OAuth 2.0) is not available yet; choose a password")

    def check_mailbox(self) -> None:
        """Step 2: a password, or an existing primary account and a login format."""
        if self.shared:
            try:
                primary = accounts.by_id(int(self.primary_account_id))
            except (ValueError, ConnectorError):
                raise Invalid("primary account: choose the account whose login reaches the shared mailbox") from None
            if primary.is_shared:
                raise Invalid("primary account: choose an account that is not itself a shared mailbox")
            if self.login_format not in LOGIN_FORMATS:
                raise Invalid("login format: plain, exchange or dovecot")
        # A password may be left out for a send-only relay without login: step 3 knows, and checks it.

    def settings(self, *, for_check: bool = False) -> AccountSettings:
        """The account these answers describe (ports left empty get the usual one)."""
        receives, sends = self.receives, self.sends
        password = unseal_password(self.password_token) if not self.shared and self.password_token else None
        return AccountSettings(
            name=self.name.strip() or (self.address.strip() if not for_check else "new account"),
            address=self.address.strip(),
            display_name=self.display_name.strip(),
            username=self.username.strip() or self.address.strip(),
            password=password,
            primary_account_id=int(self.primary_account_id) if self.shared and self.primary_account_id else None,
            login_format=self.login_format if self.shared else "plain",
            incoming_protocol=self.incoming_protocol,
            incoming_security=self.incoming_security,
            incoming_host=self.incoming_host.strip() if receives else "",
            incoming_port=_port(self.incoming_port, self.incoming_protocol, self.incoming_security),
            folder=self.folder.strip() or "INBOX",
            folders=[self.folder.strip() or "INBOX"],
            outgoing_host=self.outgoing_host.strip() if sends else "",
            outgoing_port=_port(self.outgoing_port, "smtp", self.outgoing_security),
            outgoing_security=self.outgoing_security,
            smtp_auth=self.smtp_auth,
            tls_verify=self.tls_verify,
            ca_cert_pem=self.ca_cert_pem or None,
        )

    def check_servers(self) -> None:
        """Step 3: at least one server switched on, and settings an account may have."""
        if not self.receives and not self.sends:
            raise Invalid("servers: switch on receiving, sending or both")
        for used, label, host in (
            (self.receives, "incoming server", self.incoming_host),
            (self.sends, "outgoing server", self.outgoing_host),
        ):
            if used and not host.strip():
                raise Invalid(f"{label}: required (or switch it off)")
        settings = self.settings(for_check=True)
        accounts.validate(settings)
        if not self.password_token and accounts.needs_password(settings):
            raise Invalid(
                "password: required to log in (Back to step 2); only a send-only relay without login needs none"
            )


def _port(value: str, protocol: str, security: str) -> int:
    value = value.strip()
    if not value:
        return DEFAULT_PORTS.get((protocol, security), 0)
    if not value.isascii() or not value.isdigit() or len(value) > 5:
        raise Invalid(f"port: {value!r} is not a port number (1 to 65535)")
    return int(value)
