"""The account page: the user's API key, and a button that replaces it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from tasks.api.keys import api_key_get, api_key_rotate
from tasks.pages.views import page_context


@login_required
@require_GET
def account_page(request: HttpRequest) -> HttpResponse:
    response = render(request, "pages/account.html", page_context(api_key=api_key_get(user=request.user)))
    response["Cache-Control"] = "no-store"  # the page shows a secret
    return response


@login_required
@require_POST
def rotate_key(request: HttpRequest) -> HttpResponse:
    had_key = api_key_get(user=request.user) is not None
    api_key_rotate(user=request.user)
    messages.success(request, _("Your new API key is shown below; the old one no longer works.") if had_key
                     else _("Your API key is shown below."))
    return redirect("page-account")
