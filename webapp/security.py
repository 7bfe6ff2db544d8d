"""HTTP security: proxy headers, the session cookie, logging in and out, and response headers.

Login sessions live on the server (services/sessions.py). The signed session cookie carries, where
flask-login keeps a user id, the random token of that server-side session, besides the CSRF secret and
flashed messages; it says nothing about the user by itself. Every request looks the token up (a primary
key read), so a session that was ended — logout, a new password, a new role, an admin's "End all
sessions" — or is past its idle or absolute end opens nothing, whoever holds a copy of the cookie.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, flash, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_url, logout_user
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp.extensions import login_manager
from webapp.models import User
from webapp.services.identity import sessions, setup

# Pages of our own: scripts and styles only from this app; frames only from srcdoc (message view).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Where flask-login keeps the logged-in identity in the session: for us, the session token.
SESSION_TOKEN = "_user_id"
LOGIN_MESSAGE = "Please log in to access this page."


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
        """Secure when the config says so, or when this request came over https."""
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def init_app(app: Flask) -> None:
    """Set up ProxyFix (when configured), the session cookie, the login manager and the response headers."""
    proxy = {k: int(app.config[f"PROXY_FIX_{k.upper()}"]) for k in ("x_for", "x_proto", "x_host", "x_prefix")}
    if any(proxy.values()):
        app.wsgi_app = ProxyFix(app.wsgi_app, **proxy)  # type: ignore[method-assign]
    if not proxy["x_for"]:
        app.before_request(_warn_forwarded_for)
    app.session_interface = SessionInterface()
    login_manager.login_view = "auth.login"
    # The server-side session record is the protection; flask-login's own would only mark it "not fresh".
    login_manager.session_protection = None
    login_manager.user_loader(load_user)
    login_manager.unauthorized_handler(_unauthorized)
    app.after_request(_headers)


def log_in(user: User) -> None:
    """Start a new session for ``user``: a new token and a new CSRF secret; nothing of the session
    before the login survives (a cookie or form token from before is of no use afterwards)."""
    session.clear()
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)
    token = sessions.start(user, request.remote_addr, request.user_agent.string)
    session[SESSION_TOKEN] = token
    session["_fresh"] = True
    login_manager._update_request_context_with_user(user)


def renew_login() -> None:
    """After a change that ends a user's other sessions (a new password, "end all sessions"), this one goes
    on under a new token: a copy of the old cookie (a thief's) opens nothing any more."""
    user = current_user._get_current_object()
    token = session.get(SESSION_TOKEN)
    if isinstance(token, str):
        sessions.end(token)
    log_in(user)


def log_out() -> None:
    """End this session on the server, and forget the cookie's contents."""
    token = session.get(SESSION_TOKEN)
    if isinstance(token, str):
        sessions.end(token)
    session.clear()
    logout_user()


def current_session_token() -> str | None:
    """The token of the logged-in session of this request, if any (for "keep this one" choices)."""
    token = session.get(SESSION_TOKEN)
    return token if current_user.is_authenticated and isinstance(token, str) else None


def current_session_key() -> str:
    """The stored key of this request's session (what signed inline-image links name)."""
    token = current_session_token()
    if token is None:
        raise RuntimeError("no logged-in session")
    return sessions.key_of(token)


def user_of_session(key: str) -> User | None:
    """The user of the live session stored under ``key``, or None once it has ended."""
    record = sessions.by_key(key)
    return record.user if record is not None else None


def load_user(token: str) -> User | None:
    """flask-login's user loader: the user of the live session ``token``; None (cookie cleared) once it ended."""
    record = sessions.resume(token)
    if record is None:
        # Ended or expired: drop it from the cookie too.
        session.pop(SESSION_TOKEN, None)
        session.pop("_fresh", None)
        return None
    return record.user


def _unauthorized() -> ResponseReturnValue:
    # On a fresh install there is no one to log in as: straight to the first-run page, with no message.
    if setup.needs_setup():
        return redirect(url_for("auth.first_run"))
    flash(LOGIN_MESSAGE, "info")
    return redirect(login_url("auth.login", next_url=request.url))


def _warn_forwarded_for() -> None:
    if "X-Forwarded-For" in request.headers and not current_app.extensions.get("emailconnector.xff_warned"):
        current_app.extensions["emailconnector.xff_warned"] = True
        current_app.logger.warning(
            "A request carries X-Forwarded-For but PROXY_FIX_X_FOR is 0: every client seems to come from "
            "the proxy's address %s, so one client's failed logins throttle everyone behind it. Set "
            "EMAILCONNECTOR_PROXY_FIX_X_FOR to the number of proxies in front of the app.",
            request.remote_addr,
        )


def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    # Pages and downloads hold mail and CSRF tokens: no cache keeps them (nor the back button after
    # logout). Only a route that chose a private policy itself keeps it; static files keep theirs.
    if request.endpoint != "static" and not (response.cache_control.private or response.cache_control.no_store):
        response.headers["Cache-Control"] = "no-store"
    return response
