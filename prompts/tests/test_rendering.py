import pytest

from prompts.errors import PromptRenderError
from prompts.rendering import body_problems, referenced_variables, render_body, schema_problems


def render(body, **variables):
    return render_body(body=body, variables=variables, label="demo@3")


def test_renders_variables_loops_and_json_without_html_escaping():
    body = "Q: {{ query }}\n{% for t in tools %}\n- {{ t.name }} {{ t.parameters|tojson }}\n{% endfor %}\nEnd"
    text = render(body, query="a < b & c", tools=[{"name": "calc", "parameters": {"x": "<1>"}}])
    assert text == 'Q: a < b & c\n- calc {"x": "<1>"}\nEnd'


def test_missing_variable_names_template_version_and_variable():
    with pytest.raises(PromptRenderError) as caught:
        render("Hello {{ name }}")
    assert "demo@3" in caught.value.message and "'name' is undefined" in caught.value.message


def test_syntax_error_names_line():
    with pytest.raises(PromptRenderError, match=r"demo@3: syntax error on line 2"):
        render("ok\n{% for %}")


@pytest.mark.parametrize("body", [
    "{{ name.__class__ }}",
    "{{ name['__class__'] }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ items.append(1) }}",
])
def test_sandbox_refuses_escapes_and_mutation(body):
    with pytest.raises(PromptRenderError, match="SecurityError"):
        render(body, name="x", items=[])


def test_python_errors_become_render_errors():
    with pytest.raises(PromptRenderError, match="demo@3"):
        render("{{ 1 / n }}", n=0)


def test_body_problems_at_save_time():
    assert body_problems("Hi {{ name }} {% for x in items %}{{ x }}{% endfor %}{{ range(3)|list }}",
                         declared={"name", "items"}) == []
    assert body_problems("{% if %}", declared=set())[0].startswith("syntax error on line 1")
    [problem] = body_problems("{{ name }} {{ secret }}", declared={"name"})
    assert "secret" in problem and "declared: name" in problem
    [problem] = body_problems("{{ name.__class__.__mro__ }}", declared={"name"})
    assert "__class__" in problem and "__mro__" in problem


def test_referenced_variables_excludes_loop_variables_and_globals():
    assert referenced_variables("{% for a in agents %}{{ a.name }}{{ loop.index }}{% endfor %}{{ range(2) }}") == {
        "agents"}


def test_schema_problems():
    assert schema_problems(None) == []
    assert schema_problems({"type": "object", "properties": {"a": {"type": "string"}}}) == []
    assert schema_problems([1]) == ["the response schema must be a JSON object"]
    [problem] = schema_problems({"type": "object", "properties": {"a": {"type": "strin"}}})
    assert "properties/a/type" in problem
