"""The security administrator's page in a real browser: a locked account listed and unlocked, a user's roles
changed (三员: two administrator roles answer a 409 page and change nothing), the password policy and the
administrator networks set (below the floor, or shutting out the caller: a 422 page); only secadmin sees it.
Also the password-change page."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.testclient import TestClient

from kb.identity.roles import ADMIN_ROLES
from tests.helpers import TEST_PASSWORD, TEST_USER, kb_of
from tests.web.conftest import LOCKME, SECADMIN, Server, csrf_of, log_in, new_page, page_login, shot

PAGE = "/ui/admin/security"


def _login_status(server: Server, password: str) -> int:
    answer = httpx.post(f"{server.url}/auth/login", json={"username": LOCKME, "password": password}, timeout=30)
    return answer.status_code


def _submit(page, form: str, path: str) -> int:  # type: ignore[no-untyped-def]
    """Click the submit button of ``form`` and return the status of the POST to ``path`` (before any redirect)."""
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith(path)) as answer:
        page.locator(form).locator("button[type=submit]").click()
    page.wait_for_load_state()
    return int(answer.value.status)


def test_secadmin_unlocks_sets_roles_policy_and_networks(browser, server: Server) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        _login_status(server, "wrong-password")
    assert _login_status(server, TEST_PASSWORD) == 423  # locked
    sec = new_page(browser, server)
    try:
        log_in(sec, server, SECADMIN, PAGE)
        nav = sec.locator("header nav a").all_inner_texts()
        assert "安全" in nav and "用户" not in nav and "审计" not in nav
        lock = sec.locator(f"#lockouts tr[data-user='{LOCKME}']")
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", lock.locator("td").nth(1).inner_text())
        shot(sec, "admin-security", full_page=True)
        assert _submit(sec, f"#lockouts tr[data-user='{LOCKME}'] form", "/unlock") == 303
        assert sec.locator("#done").inner_text() == "已解锁。"
        assert sec.locator(f"#lockouts tr[data-user='{LOCKME}']").count() == 0
        assert _login_status(server, TEST_PASSWORD) == 200  # the lock is gone

        row = f"#roles tr[data-user='{LOCKME}']"
        sec.locator(f"{row} input[value=agent]").check()
        assert _submit(sec, f"{row} form", "/roles") == 303
        assert sec.locator(f"{row} td.current").inner_text() == "报障用户、一线座席"
        assert sec.locator(f"{row} input[value=sysadmin]").count() == 0  # administrator roles: the console's

        sec.fill("#policy input[name=min_length]", "12")
        assert _submit(sec, "#policy", "/policy") == 303
        assert sec.input_value("#policy input[name=min_length]") == "12"
        sec.fill("#policy input[name=min_length]", "6")
        assert _submit(sec, "#policy", "/policy") == 422
        assert "等保" in sec.locator(".error").inner_text()
        sec.goto(PAGE)
        assert sec.input_value("#policy input[name=min_length]") == "12"  # the refused change changed nothing

        sec.fill("#cidrs textarea", "127.0.0.1/32\n::1/128")
        assert _submit(sec, "#cidrs", "/cidrs") == 303
        assert sec.input_value("#cidrs textarea") == "127.0.0.1/32\n::1/128"
        sec.fill("#cidrs textarea", "10.0.0.0/8")
        assert _submit(sec, "#cidrs", "/cidrs") == 422  # would shut out the secadmin's own address
        sec.goto(PAGE)
        assert sec.input_value("#cidrs textarea") == "127.0.0.1/32\n::1/128"
    finally:  # the other browser tests share this server: put the policy and the networks back
        sec.goto(PAGE)
        sec.fill("#policy input[name=min_length]", "8")
        _submit(sec, "#policy", "/policy")
        sec.fill("#cidrs textarea", "")
        _submit(sec, "#cidrs", "/cidrs")
        assert sec.input_value("#policy input[name=min_length]") == "8" and sec.input_value("#cidrs textarea") == ""
        sec.context.close()


def test_only_the_security_administrator_has_the_page(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    assert "安全" not in page.locator("header nav a").all_inner_texts()  # the test user: desk lead, editor
    answer = page.goto(PAGE)
    assert answer is not None and answer.status == 403
    assert page.locator(".error").get_attribute("data-code") == "forbidden"


def test_password_page(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/ui/password")
    assert page.locator("input[name=old][type=password]").count() == 1
    assert page.locator("input[name=new][type=password]").count() == 1
    assert page.evaluate("document.activeElement.name") == "old"
    shot(page, "password")


def test_security_forms_check_csrf_and_answer_4xx_pages_changing_nothing(web_client: TestClient) -> None:
    kb = kb_of(web_client)
    roles = kb.accounts.get(TEST_USER).roles
    kb.accounts.create("sec.http", ["secadmin"], "tests", password=TEST_PASSWORD, must_change=False)
    kb.accounts.enrol_totp("sec.http")
    page_login(web_client, "sec.http")
    token = csrf_of(web_client, PAGE)
    policy = {"min_length": "12", "min_classes": "3", "history": "5", "max_age_days": "90"}
    assert web_client.post(f"{PAGE}/policy", data=policy).status_code == 403  # no CSRF token
    assert kb.security.password_policy()["min_length"] == 8
    for bad, status in (({"min_length": "abc"}, 422), ({"min_length": "7"}, 422), ({"history": "100"}, 422)):
        answer = web_client.post(f"{PAGE}/policy", data=policy | bad | {"csrf_token": token})
        assert answer.status_code == status and 'class="error"' in answer.text
    assert kb.security.password_policy()["min_length"] == 8
    assert (
        web_client.post(
            f"{PAGE}/roles", data={"username": "nobody", "roles": ["agent"], "csrf_token": token}
        ).status_code
        == 404
    )
    assert web_client.post(f"{PAGE}/roles", data={"username": TEST_USER, "csrf_token": token}).status_code == 422
    assert web_client.post(f"{PAGE}/cidrs", data={"cidrs": "not-a-network", "csrf_token": token}).status_code == 422
    assert kb.accounts.get(TEST_USER).roles == roles  # the refused role change changed nothing
    done = web_client.post(f"{PAGE}/policy", data=policy | {"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303 and kb.security.password_policy()["min_length"] == 12
    unlock = web_client.post(f"{PAGE}/unlock", data={"username": "never.locked", "csrf_token": token})
    assert unlock.status_code == 200 and "该账号当前没有被锁定。" in unlock.text
    events = {r.event for r in kb.audit.query(actor="sec.http", limit=50)[1]}
    assert {"setting.change", "lockout.clear"} <= events


@pytest.mark.security
def test_the_security_page_offers_business_roles_only(web_client: TestClient) -> None:
    """Found by session 8's outside tester: the page offered every role to every account; administrator roles and
    accounts are the console's (kb.identity.roles.check_assignment), and a forged form is refused (403)."""
    kb = kb_of(web_client)
    kb.accounts.create("sec.page", ["secadmin"], "tests", password="Lan-Zhang-42", must_change=False)
    kb.accounts.enrol_totp("sec.page")
    kb.accounts.create("audit.page", ["auditadmin"], "tests", password="Lan-Zhang-42", must_change=False)
    page_login(web_client, "sec.page", "Lan-Zhang-42")
    page = web_client.get(PAGE).text
    assert 'value="agent"' in page and all(f'value="{role}"' not in page for role in ADMIN_ROLES)
    assert f'name="username" value="{TEST_USER}"' in page and 'name="username" value="audit.page"' not in page
    data = {"username": TEST_USER, "roles": ["sysadmin"], "csrf_token": csrf_of(web_client, PAGE)}
    forged = web_client.post(f"{PAGE}/roles", data=data, follow_redirects=False)
    assert forged.status_code == 403 and "sysadmin" not in kb.accounts.get(TEST_USER).roles
    data["roles"] = ["agent"]
    assert web_client.post(f"{PAGE}/roles", data=data, follow_redirects=False).status_code == 303
    assert kb.accounts.get(TEST_USER).roles == ("agent",)
