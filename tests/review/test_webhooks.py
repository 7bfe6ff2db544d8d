"""Webhook targets: IPv6 forms that embed IPv4 addresses, redirects, credentials, secrets in output."""

from __future__ import annotations

import pytest

from webapp.adapters import webhook
from webapp.adapters.errors import PermanentError

# docs/webhooks.md: metadata addresses are always refused "also ... inside an IPv6 address
# (::ffff:169.254.169.254, NAT64, 6to4, Teredo)"; private/loopback ones when WEBHOOK_ALLOW_PRIVATE is off.
EMBEDDED_METADATA = {
    "local-use NAT64 64:ff9b:1::/48 (RFC 8215)": "http://[64:ff9b:1::a9fe:a9fe]/hook",
    "IPv4-translated ::ffff:0:0:0/96 (RFC 2765 SIIT)": "http://[::ffff:0:a9fe:a9fe]/hook",
}
EMBEDDED_LOOPBACK = {
    "local-use NAT64 64:ff9b:1::/48 (RFC 8215)": "http://[64:ff9b:1::7f00:1]/hook",
    "IPv4-translated ::ffff:0:0:0/96 (RFC 2765 SIIT)": "http://[::ffff:0:7f00:1]/hook",
    "site-local fec0::/10 (deprecated, still private)": "http://[fec0::1]/hook",
}


@pytest.mark.parametrize("form", sorted(EMBEDDED_METADATA))
def test_metadata_address_inside_other_ipv6_translation_prefixes_is_refused(form: str) -> None:
    with pytest.raises(PermanentError):
        webhook.check_url(EMBEDDED_METADATA[form], allow_private=True)


@pytest.mark.parametrize("form", sorted(EMBEDDED_LOOPBACK))
def test_loopback_inside_other_ipv6_forms_is_refused_when_private_is_off(form: str) -> None:
    with pytest.raises(PermanentError):
        webhook.check_url(EMBEDDED_LOOPBACK[form], allow_private=False)


def test_the_web_form_accepts_it_too(app, make_account) -> None:
    from webapp.services.errors import ConnectorError
    from webapp.services.events import webhooks

    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    account = make_account()
    with pytest.raises(ConnectorError):
        webhooks.add_webhook(account, "http://[64:ff9b:1::a9fe:a9fe]/latest/meta-data")
