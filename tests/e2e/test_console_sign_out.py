"""Sign out ends the session on the server: a copy of its cookie no longer works anywhere."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from api.ui.session import COOKIE
from tests.e2e.test_console_pages import sign_in_form
from tests.support import runtime_for, settings_for


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_a_copied_cookie_is_refused_after_sign_out_by_every_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/sk.db"
    first, second = runtime_for(url), runtime_for(url)
    first.ensure_admin()
    try:
        browser = TestClient(create_app(settings_for(url), runtime=first, start_workers=False))
        other_process = TestClient(create_app(settings_for(url), runtime=second, start_workers=False))
        sign_in_form(browser, "admin", "secret-pw")
        copied = browser.cookies[COOKIE]
        elsewhere = TestClient(create_app(settings_for(url), runtime=first, start_workers=False))
        sign_in_form(elsewhere, "admin", "secret-pw")  # the same user's other sign-in
        other_process.cookies.set(COOKIE, copied)
        assert other_process.get("/ui/", follow_redirects=False).status_code == 200

        board = browser.get("/ui/")
        out = browser.post("/ui/logout", data={"csrf": csrf_of(board.text)}, follow_redirects=False)
        assert out.status_code == 303
        assert out.headers["location"] == "/ui/login"
        assert f'{COOKIE}=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]

        for client in (browser, other_process):
            client.cookies.clear()
            client.cookies.set(COOKIE, copied)
            refused = client.get("/ui/", follow_redirects=False)
            assert refused.status_code == 303, "a copy of a signed-out cookie must not work"
            assert refused.headers["location"].startswith("/ui/login")
            posted = client.post("/ui/services", data={"csrf": csrf_of(board.text)}, follow_redirects=False)
            assert posted.status_code == 303
            assert posted.headers["location"].startswith("/ui/login")
        assert elsewhere.get("/ui/", follow_redirects=False).status_code == 200, "only that session ended"
    finally:
        first.close()
        second.close()
