import pytest
from django.db import IntegrityError, transaction

from prompts.errors import PromptError, PromptNotFound, PromptRenderError, PromptValidationError
from prompts.models import PromptVersion
from prompts.services import (
    prompt_render,
    prompt_template_create,
    prompt_version_activate,
    prompt_version_create,
    prompt_version_edit,
)
from prompts.tokens import count_tokens


def test_versions_are_numbered_and_token_counted(template, version):
    second = prompt_version_create(template=template, body="Greet {{ name }} warmly, {{ mood }}.")
    assert (version.number, second.number) == (1, 2)
    assert second.token_count == count_tokens("Greet {{ name }} warmly, {{ mood }}.")
    assert version.is_active and not second.is_active


def test_render_uses_the_active_version(version, django_assert_num_queries):
    with django_assert_num_queries(1):
        rendered = prompt_render(slug="greet", variables={"name": "Ada"})
    assert rendered.text == "Say hello to Ada."
    assert rendered.label == "greet@1" and rendered.version_id == version.pk
    assert rendered.tokens == count_tokens("Say hello to Ada.")
    assert rendered.temperature == 0.2 and rendered.max_tokens == 100
    assert rendered.response_schema["required"] == ["greeting"]


def test_activation_takes_effect_on_the_next_render(template, version):
    second = prompt_version_create(template=template, body="Hi {{ name }}!")
    assert prompt_render(slug="greet", variables={"name": "Ada"}).label == "greet@1"
    prompt_version_activate(version=second)
    rendered = prompt_render(slug="greet", variables={"name": "Ada"})
    assert (rendered.label, rendered.text) == ("greet@2", "Hi Ada!")
    assert list(PromptVersion.objects.filter(is_active=True).values_list("number", flat=True)) == [2]


def test_database_refuses_two_active_versions(template, version):
    second = prompt_version_create(template=template, body="Hi {{ name }}!")
    with pytest.raises(IntegrityError), transaction.atomic():
        PromptVersion.objects.filter(pk=second.pk).update(is_active=True)


def test_database_refuses_duplicate_numbers(template, version):
    with pytest.raises(IntegrityError), transaction.atomic():
        PromptVersion.objects.create(template=template, number=1, body="x")


def test_render_errors_name_template_version_and_problem(template, version):
    with pytest.raises(PromptRenderError, match=r"greet@1: missing required variable\(s\) name"):
        prompt_render(slug="greet", variables={})
    with pytest.raises(PromptNotFound, match="nope: no such template"):
        prompt_render(slug="nope", variables={})
    prompt_template_create(slug="empty")
    with pytest.raises(PromptNotFound, match="empty: no active version"):
        prompt_render(slug="empty", variables={})
    assert issubclass(PromptNotFound, PromptError) and issubclass(PromptRenderError, PromptError)


def test_optional_variable_referenced_but_missing_is_a_render_error(template):
    prompt_version_create(template=template, body="Hi {{ name }} ({{ mood }})", activate=True)
    with pytest.raises(PromptRenderError, match="greet@1: UndefinedError: 'mood' is undefined"):
        prompt_render(slug="greet", variables={"name": "Ada"})


def test_create_refuses_bad_bodies_and_schemas(template):
    with pytest.raises(PromptValidationError, match="greet@1: syntax error"):
        prompt_version_create(template=template, body="{% if name %}")
    with pytest.raises(PromptValidationError, match="undeclared variable"):
        prompt_version_create(template=template, body="{{ password }}")
    with pytest.raises(PromptValidationError, match="unsafe attribute"):
        prompt_version_create(template=template, body="{{ name.__class__ }}")
    with pytest.raises(PromptValidationError, match="response schema is invalid"):
        prompt_template_create(slug="bad", response_schema={"type": 12})
    assert not template.versions.exists()


def test_editing_an_unused_version_changes_it_in_place(template, version):
    edited, created = prompt_version_edit(version=version, body="Hello, {{ name }}.", note="shorter")
    assert not created and edited.pk == version.pk and edited.number == 1
    assert edited.body == "Hello, {{ name }}." and edited.token_count == count_tokens("Hello, {{ name }}.")


def test_an_in_place_edit_reaches_processes_that_cached_the_version(template, version):
    """The runner renders versions cached by (id, template stamp): an unused active version
    edited in place must not go on rendering its old body in them."""
    from prompts.models import PromptTemplate
    from prompts.services import prompt_version_render, version_cached

    def render() -> str:
        stamp = str(PromptTemplate.objects.get(pk=template.pk).updated_at)
        cached = version_cached(version_id=version.pk, template_stamp=stamp)
        return prompt_version_render(version=cached, variables={"name": "Ada"}).text

    assert render() == "Say hello to Ada."
    prompt_version_edit(version=version, body="Hello, {{ name }}.")
    assert render() == "Hello, Ada."


def test_editing_a_used_version_creates_the_next_one(template, used_version, staff_user):
    new, created = prompt_version_edit(version=used_version, body="Hey {{ name }}.", edited_by=staff_user)
    assert created and new.number == 2 and not new.is_active and new.created_by == staff_user
    assert (new.temperature, new.max_tokens) == (0.2, 100)  # unchanged parameters carry over
    used_version.refresh_from_db()
    assert used_version.body == "Say hello to {{ name }}." and used_version.is_active
    assert (used_version.uses, used_version.successes) == (1, 1)


def test_note_only_edit_of_a_used_version_stays_in_place(used_version):
    edited, created = prompt_version_edit(version=used_version, note="explained")
    assert not created and edited.note == "explained"


def test_model_save_refuses_changing_a_used_version(used_version):
    used_version.body = "sneaky {{ name }}"
    with pytest.raises(PromptError, match="greet@1 has been used"):
        used_version.save()


def test_cached_version_is_read_once_and_a_template_edit_is_a_new_key(template, version, django_assert_num_queries):
    from prompts.services import prompt_version_render, version_cached

    stamp = str(template.updated_at)
    with django_assert_num_queries(1):
        first = version_cached(version_id=version.pk, template_stamp=stamp)
    with django_assert_num_queries(0):
        again = version_cached(version_id=version.pk, template_stamp=stamp)
    assert again is first and first.template.slug == "greet"
    assert prompt_version_render(version=first, variables={"name": "Ada"}).text == "Say hello to Ada."
    # An edit of the template (its schema, its variables) changes updated_at: a new key.
    template.description = "edited"
    template.save()
    with django_assert_num_queries(1):
        edited = version_cached(version_id=version.pk, template_stamp=str(template.updated_at))
    assert edited.template.description == "edited"
    with pytest.raises(PromptNotFound):
        version_cached(version_id=version.pk + 1000, template_stamp=stamp)
