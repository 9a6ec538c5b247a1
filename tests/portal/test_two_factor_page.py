"""The code page at sign-in (/accounts/2fa/authenticate/, templates/mfa/authenticate.html): Enter
in the code field signs in (issue 14: "Hủy" was a submit button inside the code's form).

A browser submits a form on Enter with the form's first submit button (its default button); the
page is read as a browser would: which submit buttons belong to the code's form, in what order."""

from __future__ import annotations

import time
from html.parser import HTMLParser

from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.utils import translation

from tests.conftest import PASSWORD


class _Forms(HTMLParser):
    """Each form's id, action and submit buttons (with their `form` owner), in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.buttons: list[dict] = []
        self._open: dict | None = None
        self._button: dict | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self._open = {
                "id": attributes.get("id"),
                "action": attributes.get("action"),
                "index": len(self.forms),
            }
            self.forms.append(self._open)
        elif (tag == "button" and attributes.get("type", "submit") == "submit") or (
            tag == "input" and attributes.get("type") == "submit"
        ):
            # A `form` attribute names the owner, wherever the form is; else the enclosing form.
            self._button = {"owner": self._open, "owner_id": attributes.get("form"), "text": ""}
            self.buttons.append(self._button)

    def handle_endtag(self, tag):
        if tag == "form":
            self._open = None
        elif tag == "button":
            self._button = None

    def handle_data(self, data):
        if self._button is not None:
            self._button["text"] += data.strip()

    def close(self):
        super().close()
        for button in self.buttons:
            if button["owner_id"]:
                button["owner"] = next((f for f in self.forms if f["id"] == button["owner_id"]), None)


def _code_page(client, principal) -> tuple[str, str]:
    secret = generate_totp_secret()
    TOTP.activate(principal, secret)
    response = client.post("/accounts/login/", {"login": "principal", "password": PASSWORD})
    assert response["Location"] == "/accounts/2fa/authenticate/"
    return client.get("/accounts/2fa/authenticate/", HTTP_ACCEPT_LANGUAGE="vi").content.decode(), secret


def test_enter_in_the_code_field_signs_in_and_cancel_is_not_the_code_forms_button(client, principal):
    page, _secret = _code_page(client, principal)
    parser = _Forms()
    parser.feed(page)
    parser.close()
    code_form = next(f for f in parser.forms if f["action"] == "/accounts/2fa/authenticate/")
    own = [b for b in parser.buttons if b["owner"] is code_form]
    with translation.override("vi"):
        sign_in, cancel = translation.gettext("Sign In"), translation.gettext("Cancel")
    assert [b["text"] for b in own] == [sign_in]  # the default button, and the only one
    cancels = [b for b in parser.buttons if b["text"] == cancel]
    assert len(cancels) == 1 and cancels[0]["owner"]["action"] == "/accounts/logout/"
    assert cancels[0]["owner"]["index"] > code_form["index"]  # after the code's form, not inside it


def test_the_code_field_is_focused_and_asks_a_phone_for_digits(client, principal):
    page, _secret = _code_page(client, principal)
    field = page[page.index('<input type="text" name="code"') :].split(">", 1)[0]
    assert "autofocus" in field and 'inputmode="numeric"' in field and 'autocomplete="one-time-code"' in field


def test_the_code_page_signs_in_with_the_code_and_shows_a_wrong_code_in_vietnamese(client, principal):
    _page, secret = _code_page(client, principal)
    wrong = client.post("/accounts/2fa/authenticate/", {"code": "000000"}, HTTP_ACCEPT_LANGUAGE="vi")
    assert wrong.status_code == 200
    assert 'aria-invalid="true"' in wrong.content.decode() and "Incorrect code" not in wrong.content.decode()
    code = format_hotp_value(hotp_value(secret, int(time.time()) // 30))
    response = client.post("/accounts/2fa/authenticate/", {"code": code})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_cancel_on_the_code_page_goes_back_to_the_sign_in_page_signed_out(client, principal):
    _code_page(client, principal)
    response = client.post("/accounts/logout/", {"next": "/accounts/login/"})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert client.get("/").status_code == 302
