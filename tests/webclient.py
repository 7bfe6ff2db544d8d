"""A browser-less client of the real web server: cookies, CSRF tokens from the page, redirects followed."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request

from tests.conftest import TEST_PASSWORD

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def csrf_token(page: str) -> str:
    match = _CSRF.search(page)
    assert match, "no csrf_token in the page"
    return match.group(1) or match.group(2)


class WebClient:
    def __init__(self, base: str, timeout: float = 120) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def _open(self, request: urllib.request.Request) -> tuple[int, str]:
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")

    def get(self, path: str) -> tuple[int, str]:
        return self._open(urllib.request.Request(self.base + path))

    def post(self, path: str, fields: dict[str, str], page: str | None = None) -> tuple[int, str]:
        """POST ``fields`` with the CSRF token of ``page`` (GET ``path`` first when not given)."""
        if page is None:
            _status, page = self.get(path)
        body = urllib.parse.urlencode({"csrf_token": csrf_token(page), **fields}).encode()
        return self._open(urllib.request.Request(self.base + path, data=body, method="POST"))

    def login(self, username: str, password: str = TEST_PASSWORD) -> None:
        status, page = self.post("/login", {"username": username, "password": password})
        assert status == 200 and "Log out" in page, (status, page[:500])
