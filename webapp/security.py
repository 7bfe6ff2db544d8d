"""HTTP security: proxy headers, the session cookie, login loading, and response headers."""

from __future__ import annotations

from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp.extensions import login_manager
from webapp.models import User
from webapp.services import users

# Pages of our own: scripts and styles only from this app; frames only from srcdoc (message view).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def message_page_csp(show_images: bool) -> str:
    """The message page's CSP, which its srcdoc frame inherits: inline styles and data: images only,
    plus remote images once the user allowed them for that message (design §8)."""
    images = "img-src 'self' data: https: http:" if show_images else "img-src 'self' data:"
    return (
        f"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; {images}; "
        "font-src 'self'; connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever this request came over https (directly or via the proxy)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def init_app(app: Flask) -> None:
    proxy = {k: int(app.config[f"PROXY_FIX_{k.upper()}"]) for k in ("x_for", "x_proto", "x_host", "x_prefix")}
    if any(proxy.values()):
        app.wsgi_app = ProxyFix(app.wsgi_app, **proxy)  # type: ignore[method-assign]
    app.session_interface = SessionInterface()
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"
    login_manager.user_loader(load_user)
    app.after_request(_headers)


def load_user(user_id: str) -> User | None:
    # The id carries the session version: changing the password ends the other sessions.
    ident, _, version = user_id.partition(":")
    if not ident.isdigit() or not version.isdigit():
        return None
    user = users.by_id(int(ident))
    if user is None or user.session_version != int(version):
        return None
    return user


def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response
