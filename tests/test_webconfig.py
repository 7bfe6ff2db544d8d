"""web.config.example is a file IIS accepts: well-formed XML, forwarding to where the app listens."""

from __future__ import annotations

from xml.etree import ElementTree

from webapp.config import PROJECT_ROOT


def test_web_config_example_is_well_formed_xml() -> None:
    # IIS refuses a web.config that is not well-formed (a "--" inside a comment was enough).
    root = ElementTree.parse(PROJECT_ROOT / "web.config.example").getroot()
    actions = [rule.find("action") for rule in root.iter("rule")]
    assert [a.get("url") for a in actions if a is not None] == [
        "http://127.0.0.1:5000/mxecoh/{R:1}",
        "http://127.0.0.1:5000/{R:1}",
    ]
