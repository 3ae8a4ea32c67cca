"""Site-wide page behaviour: prompts and tools pages, languages, the CSP header, static files."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tasks.pages.markdown import render_markdown

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def test_prompts_page_lists_templates_versions_and_rates(signed_in, defaults):
    from prompts.models import PromptVersion

    version = PromptVersion.objects.select_related("template").get(template__slug="plan", is_active=True)
    PromptVersion.objects.filter(pk=version.pk).update(uses=4, successes=3, failures=1, tokens_in_total=400,
                                                       latency_ms_total=200)
    html = signed_in.get(reverse("page-prompts")).content.decode()
    for slug in ("plan", "agent_research", "summarize", "synthesize"):
        assert f'id="prompt-{slug}"' in html
    assert f"{version.label}" in html
    assert '<meter min="0" max="100" low="50" high="90" optimum="100" value="75"' in html
    assert "(3/4)" in html and "50 ms" in html
    assert "Edit in admin" not in html  # only staff get admin links


def test_prompts_page_links_staff_to_the_admin(client, staff_user, defaults):
    client.force_login(staff_user)
    html = client.get(reverse("page-prompts")).content.decode()
    assert "Edit in admin" in html and "/admin/prompts/promptversion/" in html


def test_tools_page_shows_descriptions_and_schemas(signed_in):
    from tools.registry import all_tools

    html = signed_in.get(reverse("page-tools")).content.decode()
    for spec in all_tools():
        assert f'id="tool-{spec.name}"' in html
    assert "&quot;expression&quot;" in html  # the calculator's JSON Schema, as text


def test_pages_speak_spanish_from_the_browser_language(signed_in):
    html = signed_in.get("/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert '<html lang="es">' in html and "Nueva tarea" in html and "Cerrar sesión" in html
    html = signed_in.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="en">' in html and "New task" in html


def test_language_switcher(signed_in):
    response = signed_in.post(reverse("set_language"), {"language": "es", "next": "/tools/"})
    assert response.status_code == 302 and response["Location"] == "/tools/"
    assert "Herramientas" in signed_in.get("/tools/").content.decode()


def test_every_spanish_message_is_translated():
    from pathlib import Path

    from django.conf import settings

    po = (Path(settings.BASE_DIR) / "locale" / "es" / "LC_MESSAGES" / "django.po").read_text()
    entries = po.split("\n\n")[1:]
    untranslated = [entry for entry in entries if 'msgstr ""' in entry and "msgstr \"\"\n\"" not in entry]
    assert not untranslated
    assert "#, fuzzy" not in po


def test_csp_header_forbids_inline_script(signed_in):
    policy = signed_in.get("/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self' ws: wss:"
    assert directives["frame-ancestors"] == "'none'"


def test_pages_carry_no_inline_script_or_style(signed_in, user):
    from tasks.tests.test_pages import full_run, make_task

    task = make_task(user)
    full_run(task)
    for url in ("/", reverse("page-task", args=[task.id]), reverse("page-prompts"), reverse("page-tools"),
                reverse("login")):
        html = signed_in.get(url).content.decode()
        for start in range(len(html)):
            start = html.find("<script", start)
            if start < 0:
                break
            tag = html[start:html.index(">", start)]
            assert "src=" in tag or 'type="application/json"' in tag, (url, tag)
        assert " style=" not in html and "<style" not in html, url
        assert " onclick=" not in html and " onload=" not in html, url


def test_admin_and_api_docs_get_their_looser_policies(client, staff_user):
    client.force_login(staff_user)
    admin = client.get("/admin/")
    assert admin.status_code == 200
    assert "script-src 'self';" in admin["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in admin["Content-Security-Policy"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert "script-src 'self' 'unsafe-inline'" in docs["Content-Security-Policy"]


def test_static_files_are_served(signed_in):
    for path in ("/static/agentos/agentos.css", "/static/agentos/live.js", "/static/agentos/task.js"):
        response = signed_in.get(path)
        assert response.status_code == 200, path


@pytest.mark.parametrize("text, must_not", [
    ("<script>alert(1)</script>", "<script"),
    ("<img src=x onerror=alert(1)>", "<img"),
    ("[x](javascript:alert(1))", 'href="javascript'),
    ('<a href="https://e.com" onclick="x()">a</a>', "<a "),
])
def test_markdown_never_lets_html_through(text, must_not):
    assert must_not not in render_markdown(text)


def test_markdown_renders_the_usual_things():
    html = render_markdown("# T\n\n- a\n- **b**\n\n| x | y |\n|---|---|\n| 1 | 2 |\n\n[l](https://e.com)")
    assert "<h1>T</h1>" in html and "<strong>b</strong>" in html and "<td>1</td>" in html
    assert 'href="https://e.com"' in html and 'rel="noopener noreferrer nofollow"' in html


@pytest.mark.parametrize("language", ["en", "es"])
def test_committed_catalogs_match_their_sources(language, tmp_path):
    """The .mo files are committed (so running needs no gettext); they must be compiled from the .po."""
    import shutil
    import subprocess
    from pathlib import Path

    from django.conf import settings

    if not shutil.which("msgfmt"):
        pytest.skip("gettext's msgfmt is not installed (.ci/run installs it)")
    folder = Path(settings.BASE_DIR) / "locale" / language / "LC_MESSAGES"
    compiled = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check-format", "-o", str(compiled), str(folder / "django.po")], check=True)
    assert compiled.read_bytes() == (folder / "django.mo").read_bytes(), \
        f"run: manage.py compilemessages (locale/{language} is stale)"


def test_the_conventional_accounts_login_address_leads_to_the_sign_in_page(client):
    response = client.get("/accounts/login/?next=/tasks/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/tasks/"
    assert client.get(response["Location"]).status_code == 200
