import time

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


# --- the sandbox's limits (prompts/sandbox.py) --------------------------------------------
# Each of these froze the rendering process or got it killed for its memory, or (the
# macro) ended in a RecursionError that nothing caught.
HOSTILE = {
    "nested loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "percent width": '{{ "%0999999999d" % 1 }}',
    "repetition": '{{ "a" * 10**10 }}',
    "concatenation": '{% set ns = namespace(s="a") %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}'
                     "{% endfor %}{{ ns.s }}",
    "self-calling macro": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "macro calling itself twice": "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
                                  "{{ f(40) }}",
    "center filter": '{{ "a"|center(10000000000) }}',
    "ljust method": '{{ "a".ljust(10**10) }}',
    "format width": '{{ "{:>999999999}".format(1) }}',
    "join of a range": '{{ range(100000)|join("x" * 100000) }}',
    "power": "{{ 10**(10**10) }}",
    "list holding itself twice": '{% set ns = namespace(x=[1]) %}{% for i in range(60) %}{% set ns.x = [ns.x, ns.x] %}'
                                 "{% endfor %}{{ ns.x }}",
    "text gathered by a macro": '{% macro m() %}{% for i in range(100000) %}{{ "x" * 100000 }}{% endfor %}'
                                "{% endmacro %}{{ m() }}",
}
REASONS = {
    "nested loops": "more than 1,000,000 loop iterations and calls",
    "self-calling macro": "recursion too deep",
    "macro calling itself twice": "took longer than 0.5 seconds",
    "text gathered by a macro": "builds more than 10,000,000 characters in all",
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_templates_are_refused_quickly_with_a_render_error(name, settings):
    settings.PROMPT_RENDER_MAX_SECONDS = 0.5
    started = time.monotonic()
    with pytest.raises(PromptRenderError) as caught:
        render(HOSTILE[name])
    reason = REASONS.get(name, "a value would be longer than 1,000,000 characters")
    assert caught.value.message.startswith("prompt demo@3: ") and reason in caught.value.message
    assert "\n" not in caught.value.message
    assert time.monotonic() - started < 1.5


def test_the_rendered_text_has_the_limit_of_one_value(settings):
    settings.PROMPT_RENDER_MAX_CHARS = 10_000
    assert len(render('{% for i in range(9) %}{{ "x" * 1000 }}{% endfor %}')) == 9000
    with pytest.raises(PromptRenderError, match="the text would be longer than 10,000 characters"):
        render('{% for i in range(11) %}{{ "x" * 1000 }}{% endfor %}')


def test_limits_hold_for_data_from_the_variables(settings):
    settings.PROMPT_RENDER_MAX_STEPS = 10_000
    with pytest.raises(PromptRenderError, match="loop iterations and calls"):
        render("{% for a in items %}{% for b in items %}{% endfor %}{% endfor %}", items=list(range(1000)))
    with pytest.raises(PromptRenderError, match="would be longer than"):
        render("{{ ('%(t)s' * 100000) % payload }}", payload={"t": "x" * 1000})


def test_ordinary_templates_keep_working_under_the_limits():
    body = (
        "{% macro item(t) %}{{ t.name|upper }} ({{ '%.1f'|format(t.score) }}){% endmacro %}"
        "{% set ns = namespace(names=[]) %}"
        "{% for t in tools %}{% set ns.names = ns.names + [t.name] %}{% endfor %}"
        "{{ tools|map(attribute='name')|join(', ') }}|{{ ns.names|length }}|{{ item(tools[0]) }}|"
        "{{ ('-' ~ query ~ '-')|center(9) }}|{{ {'q': query, 'n': [1, 2]}|tojson(indent=1) }}|"
        "{{ '{}:{:>4}'.format(query, 7) }}|{{ query * 3 }}|{{ 2 ** 10 }}|{{ tools[:1]|length }}"
    )
    tools = [{"name": f"t{i}", "score": i / 3} for i in range(500)]
    text = render(body, tools=tools, query="ab")
    assert text.startswith("t0, t1, t2, ") and "|500|T0 (0.0)|" in text
    assert '|   -ab-  |{\n "q": "ab",\n "n": [\n  1,\n  2\n ]\n}|ab:   7|ababab|1024|1' in text


def test_a_body_nested_too_deeply_is_a_problem_not_a_crash():
    body = "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}"
    assert body_problems(body, declared=set()) == ["syntax error on line 1: the template nests too deeply"]
    with pytest.raises(PromptRenderError, match="nests too deeply"):
        render(body)
