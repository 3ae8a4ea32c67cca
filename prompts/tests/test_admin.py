import pytest
from django.urls import reverse

from prompts.models import PromptTemplate, PromptVersion
from prompts.services import prompt_render, prompt_version_create, prompt_version_record_use


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


def form_data(response) -> dict:
    """The POST data an unchanged submit of an admin change form would send."""
    data = {}

    def add(form):
        for name in form.fields:
            value = form[name].value()  # already prepared for the widget (JSON as text)
            if value is None or value is False:
                continue
            data[form.add_prefix(name)] = "on" if value is True else value
    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for name, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{name}"] = value
        for form in formset.forms:
            add(form)
    return data


def version_url(version, view="change"):
    return reverse(f"admin:prompts_promptversion_{view}", args=[version.pk])


def test_template_list_shows_active_version_tokens_uses_and_success_rate(staff, used_version):
    prompt_version_record_use(version_id=used_version.pk, success=False, tokens_in=1, tokens_out=1, latency_ms=1)
    response = staff.get(reverse("admin:prompts_prompttemplate_changelist"))
    assert response.status_code == 200
    row = response.content.decode()
    assert "greet" in row and "v1" in row and f">{used_version.token_count}<" in row and "50%" in row
    assert staff.get(reverse("admin:prompts_prompttemplate_changelist") + "?q=hello").context["cl"].result_count == 1
    assert staff.get(reverse("admin:prompts_prompttemplate_changelist") + "?q=zzz").context["cl"].result_count == 0
    assert staff.get(reverse("admin:prompts_prompttemplate_changelist") + "?active=no").context["cl"].result_count == 0


def test_version_list_and_filters(staff, used_version):
    response = staff.get(reverse("admin:prompts_promptversion_changelist") + "?is_active__exact=1&q=greet")
    assert response.status_code == 200 and response.context["cl"].result_count == 1
    assert "100%" in response.content.decode()


def test_editing_a_used_version_in_the_admin_makes_the_next_version(staff, used_version):
    data = form_data(staff.get(version_url(used_version)))
    data["body"] = "Hello there, {{ name }}!"
    response = staff.post(version_url(used_version), data, follow=True)
    assert response.status_code == 200
    new = PromptVersion.objects.get(template=used_version.template, number=2)
    assert new.body == "Hello there, {{ name }}!" and not new.is_active
    assert response.redirect_chain[-1][0] == version_url(new)
    text = " ".join(str(message) for message in response.context["messages"])
    assert "has been used" in text and "saved as version 2" in text
    used_version.refresh_from_db()
    assert used_version.body == "Say hello to {{ name }}." and used_version.uses == 1 and used_version.is_active

    # Activate version 2 with the admin action; the next render uses it, v1 keeps its statistics.
    response = staff.post(reverse("admin:prompts_promptversion_changelist"),
                          {"action": "activate_selected", "_selected_action": [new.pk]}, follow=True)
    assert "Activated greet@2" in response.content.decode()
    assert prompt_render(slug="greet", variables={"name": "Ada"}).text == "Hello there, Ada!"
    used_version.refresh_from_db()
    assert not used_version.is_active and (used_version.uses, used_version.successes) == (1, 1)


def test_editing_an_unused_version_changes_it_in_place(staff, version):
    data = form_data(staff.get(version_url(version)))
    data.update(body="Hi {{ name }}.", temperature="0.7")
    response = staff.post(version_url(version), data)
    assert response.status_code == 302
    version.refresh_from_db()
    assert (version.body, version.temperature, version.number) == ("Hi {{ name }}.", 0.7, 1)
    assert PromptVersion.objects.count() == 1


@pytest.mark.parametrize("body, message", [
    ("Hello {% if name %}", "greet@1: syntax error on line 1"),
    ("Hello {{ nmae }}", "undeclared variable(s) nmae"),
    ("{{ name.__class__.__base__ }}", "unsafe attribute(s) __base__, __class__"),
])
def test_bad_bodies_are_refused_at_save_time(staff, version, body, message):
    data = form_data(staff.get(version_url(version)))
    data["body"] = body
    response = staff.post(version_url(version), data)
    assert response.status_code == 200
    assert message in " ".join(response.context["adminform"].form.errors["body"])
    version.refresh_from_db()
    assert version.body == "Say hello to {{ name }}."


def test_adding_a_version_numbers_it_and_records_the_author(staff, staff_user, version):
    response = staff.post(reverse("admin:prompts_promptversion_add"),
                          {"template": version.template_id, "body": "Yo {{ name }}", "note": "casual"})
    assert response.status_code == 302
    added = PromptVersion.objects.get(number=2)
    assert added.created_by == staff_user and not added.is_active and added.note == "casual"


def test_invalid_temperature_is_refused(staff, version):
    data = form_data(staff.get(version_url(version)))
    data["temperature"] = "5"
    response = staff.post(version_url(version), data)
    assert response.status_code == 200 and response.context["adminform"].form.errors


def test_template_admin_creates_template_with_first_version_active(staff):
    url = reverse("admin:prompts_prompttemplate_add")
    data = form_data(staff.get(url))
    data.update({"slug": "welcome", "description": "Welcomes.", "required_variables": '["who"]',
                 "optional_variables": "[]", "response_schema": '{"type": "object"}', "sample_variables": "{}",
                 "versions-TOTAL_FORMS": "1", "versions-0-body": "Welcome, {{ who }}.", "versions-0-note": "v1"})
    response = staff.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    version = PromptTemplate.objects.get(slug="welcome").versions.get()
    assert version.is_active and version.number == 1
    assert prompt_render(slug="welcome", variables={"who": "Ada"}).text == "Welcome, Ada."


def test_template_admin_refuses_invalid_schema_and_orphaned_variables(staff, version):
    url = reverse("admin:prompts_prompttemplate_change", args=[version.template_id])
    data = form_data(staff.get(url))
    data["response_schema"] = '{"type": "objet"}'
    response = staff.post(url, data)
    assert response.status_code == 200
    assert "response schema is invalid" in str(response.context["adminform"].form.errors)

    data = form_data(staff.get(url))
    data["required_variables"] = '["other"]'
    response = staff.post(url, data)
    assert response.status_code == 200
    assert "undeclared variable(s) name" in str(response.context["inline_admin_formsets"][0].formset.errors)


def test_inline_used_versions_are_read_only_and_unused_ones_editable(staff, template, used_version):
    draft = prompt_version_create(template=template, body="Draft {{ name }}")
    url = reverse("admin:prompts_prompttemplate_change", args=[template.pk])
    response = staff.get(url)
    forms = {form.instance.number: form for form in response.context["inline_admin_formsets"][0].formset.forms}
    assert forms[1].fields["body"].disabled and not forms[2].fields["body"].disabled
    data = form_data(response)
    prefix = forms[2].prefix
    data[f"{prefix}-body"] = "Draft two {{ name }}"
    data[f"{forms[1].prefix}-body"] = "tampered {{ name }}"  # ignored: the field is disabled
    assert staff.post(url, data).status_code == 302
    draft.refresh_from_db()
    used_version.refresh_from_db()
    assert draft.body == "Draft two {{ name }}" and used_version.body == "Say hello to {{ name }}."


def test_preview_renders_with_sample_variables_and_counts_tokens(staff, version):
    response = staff.get(version_url(version, "preview"))
    assert response.status_code == 200 and "&quot;Ada&quot;" in response.content.decode()
    response = staff.post(version_url(version, "preview"), {"variables": '{"name": "Grace   Hopper"}'})
    assert response.context["result"]["text"] == "Say hello to Grace Hopper."
    assert response.context["result"]["tokens_after"] == 6 < response.context["result"]["tokens_before"] + 1
    assert "6 tokens" in response.content.decode()


@pytest.mark.parametrize("raw, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ("{}", "greet@1: missing required variable(s) name"),
    ("[" * 2000, "nested deeper than"),
    ('{"name": ' * 40 + '"x"' + "}" * 40, "nested deeper than"),
])
def test_preview_reports_problems_without_a_500(staff, version, raw, message):
    response = staff.post(version_url(version, "preview"), {"variables": raw})
    assert response.status_code == 200 and message in response.context["error"]


@pytest.mark.parametrize("body, message", [
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }} {{ name }}", "greet@2: recursion too deep"),
    ('{{ name * 10**10 }}', "greet@2: over the sandbox's limits: a value would be longer than"),
    ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}{{ name }}",
     "greet@2: over the sandbox's limits: more than"),
])
def test_preview_shows_a_template_past_the_sandbox_limits_as_an_error(staff, template, version, body, message):
    hostile = prompt_version_create(template=template, body=body)  # saving validates as before: it is accepted
    response = staff.post(version_url(hostile, "preview"), {"variables": '{"name": "Ada"}'})
    assert response.status_code == 200 and response.context["result"] is None
    assert message in response.context["error"] and message.split(": ")[0] in response.content.decode()


def test_diff_against_previous_version_is_escaped(staff, template, version):
    second = prompt_version_create(template=template, body="Say <script>alert(1)</script> to {{ name }}.")
    response = staff.get(version_url(second, "diff"))
    content = response.content.decode()
    assert response.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content and "<script>alert(1)" not in content
    kinds = {line["kind"] for line in response.context["lines"]}
    assert {"added", "removed", "meta"} <= kinds
    first = staff.get(version_url(version, "diff"))
    assert "nothing to compare with" in first.content.decode()


def test_activate_button_and_delete_protection(staff, template, used_version):
    second = prompt_version_create(template=template, body="Hey {{ name }}")
    assert staff.get(version_url(second, "activate")).status_code == 405
    response = staff.post(version_url(second, "activate"))
    assert response.status_code == 302
    second.refresh_from_db()
    assert second.is_active
    assert staff.get(version_url(used_version, "delete")).status_code == 403


def test_activating_two_versions_of_one_template_at_once_is_refused(staff, template, version):
    second = prompt_version_create(template=template, body="Hey {{ name }}")
    response = staff.post(reverse("admin:prompts_promptversion_changelist"),
                          {"action": "activate_selected", "_selected_action": [version.pk, second.pk]}, follow=True)
    assert "at most one version per template" in response.content.decode()
    version.refresh_from_db()
    assert version.is_active


def test_non_staff_cannot_reach_admin_views(client, user, version):
    client.force_login(user)
    for view in ("preview", "diff", "change"):
        response = client.get(version_url(version, view))
        assert response.status_code == 302 and "/login/" in response["Location"]
