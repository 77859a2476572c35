"""Unit tests for the query language (pybuild/query.py) against an in-memory fake environment."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx
import pytest

from pybuild.errors import PybuildError
from pybuild.query import OUTPUT_FORMATS, QueryResult, attribute_text, evaluate, format_result

TOP, LEFT, RIGHT, BASE, BASE_RS = "//d:top", "//d:left", "//d:right", "//d:base", "//d:base.rs"
RULES = [BASE, LEFT, RIGHT, TOP]

# The diamond: top -> left, right -> base -> base.rs (a source file).
DIAMOND = {TOP: [LEFT, RIGHT], LEFT: [BASE], RIGHT: [BASE], BASE: [BASE_RS], BASE_RS: []}
KINDS = {
    TOP: "rust_binary rule",
    LEFT: "rust_library rule",
    RIGHT: "rust_library rule",
    BASE: "rust_library rule",
    BASE_RS: "source file",
}
ATTRIBUTES = {
    TOP: {"crate_name": "top", "deps": [LEFT, RIGHT], "testonly": False},
    LEFT: {"crate_name": "left", "deps": [BASE], "testonly": True},
    RIGHT: {"crate_name": "right", "deps": [BASE], "testonly": False},
    BASE: {"crate_name": "base", "deps": [], "srcs": [BASE_RS], "testonly": False},
}


class FakeEnv:
    """Resolves //d:<name>, //d:all (rules) and //d:* (rules and files); counts graph loads."""

    def __init__(self, edges: dict[str, list[str]] | None = None) -> None:
        self.edges = DIAMOND if edges is None else edges
        self.graph_calls = 0

    def resolve_pattern(self, pattern: str) -> set[str]:
        if pattern in ("//d:all", "//d/..."):
            return {t for t in self.edges if KINDS.get(t, "").endswith(" rule")}
        if pattern == "//d:*":
            return set(self.edges)
        if pattern in self.edges:
            return {pattern}
        raise PybuildError(f"no such target '{pattern}'")

    def dependency_graph(self, roots: Iterable[str]) -> nx.DiGraph:
        self.graph_calls += 1
        full = nx.DiGraph([(u, v) for u, deps in self.edges.items() for v in deps])
        full.add_nodes_from(self.edges)
        roots = list(roots)
        closure = set(roots).union(*(nx.descendants(full, r) for r in roots))
        return full.subgraph(closure).copy()

    def kind(self, target: str) -> str:
        return KINDS[str(target)]

    def attribute(self, target: str, name: str) -> object | None:
        return ATTRIBUTES.get(str(target), {}).get(name)


class EchoEnv(FakeEnv):
    """Every word is its own target, so tests can observe exactly how the lexer split words."""

    def resolve_pattern(self, pattern: str) -> set[str]:
        return {pattern}

    def dependency_graph(self, roots: Iterable[str]) -> nx.DiGraph:
        graph = nx.DiGraph()
        graph.add_nodes_from(roots)
        return graph


@pytest.fixture
def env() -> FakeEnv:
    return FakeEnv()


def query(expression: str, env: FakeEnv) -> list[str]:
    return evaluate(expression, env).targets


def syntax_error(expression: str, env: FakeEnv) -> str:
    with pytest.raises(PybuildError) as info:
        evaluate(expression, env)
    return info.value.message


# ----------------------------------------------------------------------------- words


def test_single_target(env):
    assert query(TOP, env) == [TOP]


def test_pattern_results_are_sorted_by_label(env):
    assert query("//d:all", env) == sorted(RULES)
    assert query("//d:*", env) == sorted([*RULES, BASE_RS])


def test_environment_errors_propagate(env):
    assert "no such target '//nope:x'" in syntax_error("//nope:x", env)


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("//a:b-c", ["//a:b-c"]),  # '-' inside a word is part of it
        ("@@rules_rust+//x:y", ["@@rules_rust+//x:y"]),  # canonical repo names keep their '+'
        ("'a+b'", ["a+b"]),
        ('"union"', ["union"]),  # quoted keywords are plain words
        ("//a:*", ["//a:*"]),
        ("//a/...:all-targets", ["//a/...:all-targets"]),
    ],
)
def test_word_lexing(expression, words):
    assert query(expression, EchoEnv()) == words


def test_operators_split_unquoted_words():
    assert query("a+b", EchoEnv()) == ["a", "b"]
    assert query("a -b", EchoEnv()) == ["a"]


# ----------------------------------------------------------------------------- deps / rdeps


def test_deps_is_the_transitive_closure_including_the_roots(env):
    assert query(f"deps({TOP})", env) == sorted([*RULES, BASE_RS])
    assert query(f"deps({BASE})", env) == [BASE, BASE_RS]


@pytest.mark.parametrize(
    ("depth", "expected"),
    [
        (0, [TOP]),
        (1, [TOP, LEFT, RIGHT]),
        (2, [TOP, LEFT, RIGHT, BASE]),
        (3, [TOP, LEFT, RIGHT, BASE, BASE_RS]),
        (99, [TOP, LEFT, RIGHT, BASE, BASE_RS]),
    ],
)
def test_deps_depth_counts_edges(env, depth, expected):
    assert query(f"deps({TOP}, {depth})", env) == sorted(expected)


def test_rdeps_within_universe(env):
    assert query(f"rdeps(//d:all, {BASE})", env) == sorted(RULES)
    assert query(f"rdeps(//d:all, {BASE_RS})", env) == sorted([*RULES, BASE_RS])


def test_rdeps_depth(env):
    assert query(f"rdeps(//d:all, {BASE}, 0)", env) == [BASE]
    assert query(f"rdeps(//d:all, {BASE}, 1)", env) == sorted([BASE, LEFT, RIGHT])


def test_rdeps_is_limited_to_the_universe_closure(env):
    # right and top depend on base too, but they are outside deps(//d:left).
    assert query(f"rdeps({LEFT}, {BASE})", env) == [BASE, LEFT]
    assert query(f"rdeps({LEFT}, {RIGHT})", env) == []


def test_closures_are_loaded_once(env):
    # left's closure is inside top's, and the result graph reuses it: one environment call.
    query(f"deps({TOP}) + deps({LEFT}) + rdeps({TOP}, {BASE})", env)
    assert env.graph_calls == 1


def test_dependency_cycle_error_from_environment_propagates():
    class CyclicEnv(FakeEnv):
        def dependency_graph(self, roots):
            raise PybuildError("cycle in dependency graph: //d:top -> //d:top")

    assert "cycle" in syntax_error(f"deps({TOP})", CyclicEnv())


# ----------------------------------------------------------------------------- paths


def test_somepath_is_a_shortest_path_in_path_order(env):
    result = evaluate(f"somepath({TOP}, {BASE_RS})", env)
    # Ties are broken by label, so the path goes through //d:left, not //d:right.
    assert result.targets == [TOP, LEFT, BASE, BASE_RS]
    assert format_result(result, "label", env).splitlines() == result.targets
    assert sorted(result.graph.edges) == sorted([(TOP, LEFT), (LEFT, BASE), (BASE, BASE_RS)])


def test_somepath_from_a_set_and_inside_let(env):
    assert query(f"let s = set({LEFT} {TOP}) in somepath($s, {BASE})", env) == [LEFT, BASE]


def test_somepath_without_path_is_empty(env):
    assert query(f"somepath({BASE}, {TOP})", env) == []
    assert query(f"somepath({LEFT}, {RIGHT})", env) == []


def test_somepath_to_itself(env):
    assert query(f"somepath({BASE}, {BASE})", env) == [BASE]


def test_somepath_nested_in_an_operator_is_sorted(env):
    assert query(f"somepath({TOP}, {BASE}) + {RIGHT}", env) == sorted([TOP, LEFT, BASE, RIGHT])


def test_allpaths(env):
    assert query(f"allpaths({TOP}, {BASE})", env) == sorted(RULES)
    assert query(f"allpaths({LEFT}, {BASE_RS})", env) == [BASE, BASE_RS, LEFT]
    assert query(f"allpaths({BASE}, {TOP})", env) == []
    assert query(f"allpaths({TOP}, {TOP})", env) == [TOP]


# ----------------------------------------------------------------------------- filters


def test_kind(env):
    assert query(f"kind(rust_library, deps({TOP}))", env) == [BASE, LEFT, RIGHT]
    assert query(f"kind('source file', deps({TOP}))", env) == [BASE_RS]
    assert query('kind("^rust_(binary|library) rule$", //d:*)', env) == sorted(RULES)


def test_filter_searches_the_label(env):
    assert query("filter('left|right', //d:*)", env) == [LEFT, RIGHT]
    assert query(r"filter('\.rs$', //d:*)", env) == [BASE_RS]


def test_attr(env):
    assert query("attr(crate_name, '^base$', //d:*)", env) == [BASE]
    assert query(r"attr(srcs, 'base\.rs', //d:*)", env) == [BASE]  # list element match
    assert query(r"attr(deps, '^\[\]$', //d:*)", env) == [BASE]  # empty list renders as []
    assert query("attr(testonly, 1, //d:*)", env) == [LEFT]  # booleans render as 1/0
    assert query("attr(nonexistent, '.*', //d:*)", env) == []  # absent attributes never match


def test_attribute_text_follows_bazel():
    assert attribute_text([LEFT, RIGHT]) == "[//d:left, //d:right]"
    assert attribute_text([]) == "[]"
    assert attribute_text(False) == "0"
    assert attribute_text({"b", "a"}) == "[a, b]"
    assert attribute_text({"k": ["v"]}) == "{k: [v]}"
    assert attribute_text(3) == "3"


def test_invalid_regex(env):
    message = syntax_error("kind('(', //d:all)", env)
    assert "invalid regular expression '('" in message
    assert "kind()" in message


# ----------------------------------------------------------------------------- set operators


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (f"{TOP} + {LEFT}", [LEFT, TOP]),
        (f"{TOP} union {LEFT}", [LEFT, TOP]),
        (f"deps({TOP}) - deps({LEFT})", [RIGHT, TOP]),
        (f"deps({TOP}) except deps({LEFT})", [RIGHT, TOP]),
        (f"deps({LEFT}) ^ deps({RIGHT})", [BASE, BASE_RS]),
        (f"deps({LEFT}) intersect deps({RIGHT})", [BASE, BASE_RS]),
        (f"set({TOP} {LEFT} {TOP})", [LEFT, TOP]),
        ("set()", []),
    ],
)
def test_set_operators(env, expression, expected):
    assert query(expression, env) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # (all - left) + left = all; were '+' tighter it would be all - left.
        (f"//d:all - {LEFT} + {LEFT}", sorted(RULES)),
        # (top + left) ^ left = left; were '^' tighter it would be top + left.
        (f"{TOP} + {LEFT} ^ {LEFT}", [LEFT]),
        (f"{TOP} + ({LEFT} ^ {RIGHT})", [TOP]),
        (f"//d:all except {LEFT} except {RIGHT}", [BASE, TOP]),
    ],
)
def test_operators_are_left_associative_with_equal_precedence(env, expression, expected):
    assert query(expression, env) == expected


# ----------------------------------------------------------------------------- let


def test_let_binds_a_variable(env):
    assert query(f"let v = deps({LEFT}) in $v - {LEFT}", env) == [BASE, BASE_RS]


def test_let_body_extends_to_the_end_and_shadows(env):
    assert query(f"let v = {TOP} in let v = {LEFT} in $v + {RIGHT}", env) == [LEFT, RIGHT]
    assert query(f"{BASE} + let v = {TOP} in $v", env) == [BASE, TOP]


def test_variable_can_be_used_in_set(env):
    assert query(f"let v = {TOP} in set($v {LEFT})", env) == [LEFT, TOP]


def test_undefined_variable(env):
    message = syntax_error(f"let v = {TOP} in $w", env)
    assert "undefined variable '$w'" in message
    assert "at column 20" in message


# ----------------------------------------------------------------------------- errors


def test_syntax_error_message_quotes_the_query_and_column(env):
    assert syntax_error("deps(//a:b", env) == "syntax error in query 'deps(//a:b': expected ')' at column 11"


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("", "expected an expression at column 1"),
        ("//d:top +", "expected an expression at column 10"),
        ("(//d:top", "expected ')' at column 9"),
        ("//d:top )", "unexpected ')' after the end of the expression at column 9"),
        ("//d:top //d:left", "unexpected '//d:left' after the end of the expression at column 9"),
        ("deps(//d:top,)", "expected an expression but found ')' at column 14"),
        ("deps(//d:top 1)", "expected ')' but found '1' at column 14"),
        ("'//d:top", "unclosed quotation at column 1"),
        ("*foo", "unexpected character '*'; quote the word at column 1"),
        ("//d:top | //d:left", "unexpected character '|' at column 9"),
        ("let 1x = //d:top in $1x", "invalid variable name '1x' at column 5"),
        ("let v //d:top in $v", "expected '=' but found '//d:top' at column 7"),
        ("let v = //d:top", "expected 'in' at column 16"),
        ("set(//d:top", "expected ')' at column 12"),
        ("set(//d:top deps(//d:left))", "expected ')' but found '(' at column 17"),
        ("deps(//d:top, two)", "argument 2 of deps() must be a non-negative integer"),
        ('deps(//d:top, "\u00b2")', "argument 2 of deps() must be a non-negative integer"),
        ("deps(//d:top, -1)", "expected an expression but found '-' at column 15"),
        ("kind(deps(//d:top), //d:top)", "argument 1 of kind() must be a single (quoted) word"),
    ],
)
def test_syntax_errors_name_the_position(env, expression, fragment):
    message = syntax_error(expression, env)
    assert message.startswith(f"syntax error in query '{expression}': ")
    assert fragment in message


def test_unknown_function(env):
    message = syntax_error("tests(//d:all)", env)
    assert message.startswith("unknown function 'tests' in query 'tests(//d:all)' at column 1")
    assert "allpaths, attr, deps, filter, kind, rdeps, somepath" in message


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("deps()", "deps() takes 1 or 2 arguments but 0 were given"),
        ("deps(//d:top, 1, 2)", "deps() takes 1 or 2 arguments but 3 were given"),
        ("rdeps(//d:all)", "rdeps() takes 2 or 3 arguments but 1 were given"),
        ("somepath(//d:top)", "somepath() takes 2 arguments but 1 were given"),
        ("allpaths(//d:top, //d:left, //d:base)", "allpaths() takes 2 arguments but 3 were given"),
        ("kind(rule)", "kind() takes 2 arguments but 1 were given"),
        ("attr(a, b)", "usage: attr(name, regex, expr)"),
    ],
)
def test_wrong_argument_count(env, expression, fragment):
    message = syntax_error(expression, env)
    assert message.startswith(f"syntax error in query '{expression}': ")
    assert fragment in message


def test_errors_happen_before_any_loading(env):
    syntax_error(f"deps({TOP}) + deps(", env)
    assert env.graph_calls == 0


# ----------------------------------------------------------------------------- result graph


def test_result_graph_is_induced_by_the_result(env):
    graph = evaluate(f"{TOP} + {BASE}", env).graph
    assert set(graph.nodes) == {TOP, BASE}
    assert list(graph.edges) == []  # top reaches base only through excluded targets
    graph = evaluate(f"deps({TOP}, 1)", env).graph
    assert sorted(graph.edges) == [(TOP, LEFT), (TOP, RIGHT)]


# ----------------------------------------------------------------------------- output formats


def test_label_output(env):
    result = evaluate(f"deps({LEFT})", env)
    assert format_result(result, "label", env) == f"{BASE}\n{BASE_RS}\n{LEFT}\n"
    assert format_result(evaluate("set()", env), "label", env) == ""


def test_label_kind_output(env):
    result = evaluate(f"deps({LEFT})", env)
    assert format_result(result, "label_kind", env) == (
        f"rust_library rule {BASE}\nsource file {BASE_RS}\nrust_library rule {LEFT}\n"
    )


EXPECTED_DOT = """\
digraph mygraph {
  node [shape=box];
  "//d:base"
  "//d:base.rs"
  "//d:left"
  "//d:right"
  "//d:top"
  "//d:base" -> "//d:base.rs"
  "//d:left" -> "//d:base"
  "//d:right" -> "//d:base"
  "//d:top" -> "//d:left"
  "//d:top" -> "//d:right"
}
"""

_DOT_ID = r'"(?:[^"\\]|\\.)*"'
_DOT_LINE = re.compile(rf"\s*(?:(?P<src>{_DOT_ID})(?:\s*->\s*(?P<dst>{_DOT_ID}))?|node \[shape=box\]);?\s*")


def parse_dot(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """A strict check of the DOT subset we emit: header, quoted nodes and edges, closing brace."""
    lines = text.splitlines()
    assert lines[0] == "digraph mygraph {"
    assert lines[-1] == "}"
    assert text.endswith("}\n")
    nodes, edges = [], []
    for line in lines[1:-1]:
        match = _DOT_LINE.fullmatch(line)
        assert match, f"not valid DOT: {line!r}"
        if match["dst"]:
            edges.append((json.loads(match["src"]), json.loads(match["dst"])))
        elif match["src"]:
            nodes.append(json.loads(match["src"]))
    return nodes, edges


def test_graph_output_is_deterministic_dot(env):
    result = evaluate(f"deps({TOP})", env)
    text = format_result(result, "graph", env)
    assert text == EXPECTED_DOT
    nodes, edges = parse_dot(text)
    assert set(nodes) == set(result.graph.nodes)
    assert set(edges) == set(result.graph.edges)
    assert all(src in nodes and dst in nodes for src, dst in edges)


def test_graph_output_escapes_quotes():
    result = QueryResult(['//a:"x"', "//a:b"], nx.DiGraph([('//a:"x"', "//a:b")]))
    nodes, edges = parse_dot(format_result(result, "graph", FakeEnv()))
    assert nodes == ['//a:"x"', "//a:b"]
    assert edges == [('//a:"x"', "//a:b")]


def test_empty_graph_output(env):
    assert format_result(evaluate("set()", env), "graph", env) == ("digraph mygraph {\n  node [shape=box];\n}\n")


def test_graph_output_parses_with_pydot_when_installed(env):
    pydot = pytest.importorskip("pydot")
    (graph,) = pydot.graph_from_dot_data(format_result(evaluate(f"deps({TOP})", env), "graph", env))
    edges = {(e.get_source().strip('"'), e.get_destination().strip('"')) for e in graph.get_edges()}
    assert edges == set(FakeEnv().dependency_graph([TOP]).edges)


def test_json_output(env):
    text = format_result(evaluate(f"deps({TOP}, 1)", env), "json", env)
    assert text.endswith("]\n")
    assert json.loads(text) == [
        {"label": LEFT, "kind": "rust_library rule", "deps": []},  # base is not in the result
        {"label": RIGHT, "kind": "rust_library rule", "deps": []},
        {"label": TOP, "kind": "rust_binary rule", "deps": [LEFT, RIGHT]},
    ]


def test_json_output_is_sorted_even_for_somepath(env):
    text = format_result(evaluate(f"somepath({TOP}, {BASE})", env), "json", env)
    entries = json.loads(text)
    assert [e["label"] for e in entries] == [BASE, LEFT, TOP]
    assert [e["deps"] for e in entries] == [[], [BASE], [LEFT]]


def test_unknown_output_format(env):
    with pytest.raises(PybuildError) as info:
        format_result(evaluate(TOP, env), "xml", env)
    assert "'xml'" in info.value.message
    assert all(name in info.value.message for name in OUTPUT_FORMATS)
    assert info.value.where == "--output"


# ----------------------------------------------------------------------------- opaque targets


@dataclass(frozen=True, order=True)
class FakeLabel:
    """Stands in for pybuild.labels.Label: field order deliberately differs from label order."""

    name: str
    package: str

    def __str__(self) -> str:
        return f"//{self.package}:{self.name}"


def test_targets_are_opaque_and_sorted_by_label():
    a, b = FakeLabel(name="z", package="a"), FakeLabel(name="a", package="b")

    class LabelEnv(FakeEnv):
        def __init__(self):
            super().__init__({a: [b], b: []})

        def resolve_pattern(self, pattern):
            return {a, b} if pattern == "//..." else {a}

        def kind(self, target):
            return "rust_library rule"

    env = LabelEnv()
    result = evaluate("deps(//a:z)", env)
    assert result.targets == [a, b]  # "//a:z" < "//b:a", although b < a as dataclasses
    assert format_result(result, "label", env) == "//a:z\n//b:a\n"
    assert json.loads(format_result(result, "json", env))[0] == {
        "label": "//a:z",
        "kind": "rust_library rule",
        "deps": ["//b:a"],
    }
    assert '"//a:z" -> "//b:a"' in format_result(result, "graph", env)
