"""`flowml server --auth` in the browser: pages lead to the sign-in page, a token signs in
(kept in an HttpOnly cookie), a wrong one is refused, signing out forgets it."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from flowml.server.ui.login import safe_next
from tests.ui.conftest import shot


def test_a_page_without_a_token_leads_to_sign_in(auth_ui):
    url, _tokens = auth_ui
    reply = httpx.get(url + "/experiments/1?filter=x", follow_redirects=False)
    assert reply.status_code == 303
    assert reply.headers["location"] == "/login?next=%2Fexperiments%2F1%3Ffilter%3Dx"
    api = httpx.get(url + "/api/2.0/mlflow/experiments/search")
    assert api.status_code == 401 and api.json()["error_code"] == "UNAUTHENTICATED"


def test_signing_in_with_a_token_and_out_again(ui, auth_ui):
    url, tokens = auth_ui
    exp = experiment_id_with(url, tokens["read"], "quickstart")
    ui.goto(f"{url}/experiments/{exp}")
    expect(ui).to_have_url(f"{url}/login?next=%2Fexperiments%2F{exp}")
    shot(ui, "sign-in")
    ui.fill("#token", "not-a-token")
    ui.click("form[action='/login'] button")
    expect(ui.locator("[role=alert]")).to_contain_text("not valid")
    ui.fill("#token", tokens["read"])
    ui.click("form[action='/login'] button")
    expect(ui).to_have_url(f"{url}/experiments/{exp}")
    expect(ui.locator("#runs tbody tr").first).to_be_visible()
    cookie = next(c for c in ui.context.cookies() if c["name"] == "flowml_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    ui.click("text=Sign out")
    expect(ui).to_have_url(f"{url}/login")
    ui.goto(url + "/")
    expect(ui).to_have_url(f"{url}/login?next=%2F")


def test_a_revoked_or_unknown_cookie_is_not_a_way_in(auth_ui):
    url, _tokens = auth_ui
    reply = httpx.get(url + "/", cookies={"flowml_token": "forged"}, follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"].startswith("/login")


@pytest.mark.parametrize("target, expected", [
    ("/experiments/1?x=1", "/experiments/1?x=1"), ("//evil.example/", "/"), ("/\\evil.example", "/"),
    ("https://evil.example/", "/"), ("javascript:alert(1)", "/"), ("/a\r\nSet-Cookie: x=1", "/"),
])
def test_after_sign_in_only_pages_of_this_server_are_targets(target, expected):
    assert safe_next(target) == expected


def experiment_id_with(url: str, token: str, name: str) -> str:
    reply = httpx.get(f"{url}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": name},
                      headers={"Authorization": f"Bearer {token}"})
    return reply.json()["experiment"]["experiment_id"]


def test_sign_in_reads_no_more_than_a_form_before_any_token_is_checked(auth_ui):
    url, _tokens = auth_ui

    def chunks():  # chunked: no Content-Length for the body cap to see
        for _ in range(64):
            yield b"token=" + b"x" * 65536

    reply = httpx.post(url + "/login", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status_code == 413
    assert httpx.get(url + "/health").status_code == 200
