"""Shared helpers of the attack probes."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import TEST_PASSWORD, csrf_token

COOKIE = "ec_session"


def client_as(app: Flask, username: str, password: str = TEST_PASSWORD, addr: str = "127.0.0.1") -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = addr
    page = client.get("/login").get_data(as_text=True)
    response = client.post("/login", data={"csrf_token": csrf_token(page), "username": username, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


def replay(app: Flask, client: FlaskClient) -> FlaskClient:
    thief = app.test_client()
    thief.environ_base["REMOTE_ADDR"] = "203.0.113.66"
    thief.set_cookie(COOKIE, client.get_cookie(COOKIE).value)
    return thief


def token_of(client: FlaskClient, page: str = "/") -> str:
    return csrf_token(client.get(page).get_data(as_text=True))


def post(client: FlaskClient, url: str, data: dict, page: str = "/", **kw):
    return client.post(url, data={"csrf_token": token_of(client, page), **data}, **kw)
