"""The Bazel query language: lexer, parser, evaluator and output formatters.

Targets are opaque to this module: anything hashable whose str() is the label text (pybuild's
Label, or plain strings in tests). Everything that needs the build graph goes through the
caller's QueryEnvironment, so the language can be tested without a workspace.

Grammar (Bazel's; all binary operators are left-associative and of equal precedence):

    expr ::= WORD | '$' NAME | '(' expr ')' | LET NAME '=' expr IN expr
           | FUNCTION '(' arg (',' arg)* ')' | SET '(' WORD* ')'
           | expr ('+' | 'union' | '-' | 'except' | '^' | 'intersect') expr

Unquoted words use Bazel's alphabet: letters, digits and */@.-_:$~[] (not starting with '-' or
'*'); words starting with '@@' may also contain '+' (canonical repository names). Anything else,
such as a regex with '|' or '\\', must be single- or double-quoted. '+', '=' and ',' end an unquoted
word, as in Bazel, so that `a+b` and `deps(x,1)` tokenize as expected.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from pybuild.errors import PybuildError

if TYPE_CHECKING:  # networkx takes ~0.15 s to import, so the functions that need it import it
    import networkx as nx

Target: TypeAlias = Any  # opaque: hashable, str() is the label
Targets: TypeAlias = set[Any]

OUTPUT_FORMATS = ("label", "label_kind", "graph", "json")


class QueryEnvironment(Protocol):
    """What the evaluator needs from the build: pattern resolution, the graph, rule metadata."""

    def resolve_pattern(self, pattern: str) -> set[Target]: ...

    def dependency_graph(self, roots: Iterable[Target]) -> nx.DiGraph: ...

    def kind(self, target: Target) -> str: ...

    def attribute(self, target: Target, name: str) -> object | None: ...


class QueryResult:
    """Result targets (sorted by label, except somepath: path order) and their induced graph.

    `graph` may be given as a function that makes it: --output=label and label_kind never ask for it,
    and for `//...` of a large workspace it is a graph of every target.
    """

    def __init__(self, targets: list[Target], graph: nx.DiGraph | Callable[[], nx.DiGraph]) -> None:
        self.targets = targets
        self._graph = graph

    @property
    def graph(self) -> nx.DiGraph:
        if callable(self._graph):
            self._graph = self._graph()
        return self._graph


# ----------------------------------------------------------------------------- lexer

_KEYWORDS = frozenset({"let", "in", "set", "union", "except", "intersect"})
_PUNCTUATION = frozenset("(),+-^=")
_OPERATORS = {"+": "+", "union": "+", "-": "-", "except": "-", "^": "^", "intersect": "^"}
# '@@' words first so the '+' in canonical repo names (@@rules_rust+//x) stays inside the word.
_WORD = re.compile(r"@@[A-Za-z0-9*/@.\-_:$~\[\]+]*|[A-Za-z0-9/@._:$~\[\]][A-Za-z0-9*/@.\-_:$~\[\]]*")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "eof", a punctuation character or a keyword
    text: str
    column: int  # 1-based, for error messages


def _syntax_error(query: str, message: str, column: int) -> PybuildError:
    return PybuildError(f"syntax error in query '{query}': {message} at column {column}")


def _tokenize(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(query):
        char = query[pos]
        if char.isspace():
            pos += 1
            continue
        token, pos = _next_token(query, pos)
        tokens.append(token)
    tokens.append(_Token("eof", "", len(query) + 1))
    return tokens


def _next_token(query: str, pos: int) -> tuple[_Token, int]:
    char, column = query[pos], pos + 1
    if char in _PUNCTUATION:
        return _Token(char, char, column), pos + 1
    if char in "'\"":
        end = query.find(char, pos + 1)
        if end < 0:
            raise _syntax_error(query, "unclosed quotation", column)
        # Quoted words are never keywords: that is how one writes a target named 'set'.
        return _Token("word", query[pos + 1 : end], column), end + 1
    match = _WORD.match(query, pos)
    if match is None:
        hint = "; quote the word" if char == "*" else ""
        raise _syntax_error(query, f"unexpected character '{char}'{hint}", column)
    word = match.group()
    return _Token(word if word in _KEYWORDS else "word", word, column), match.end()


# ----------------------------------------------------------------------------- syntax tree


@dataclass(frozen=True)
class _Word:
    text: str  # a target pattern, or "$name" for a variable
    column: int


@dataclass(frozen=True)
class _Let:
    name: str
    value: _Expr
    body: _Expr


@dataclass(frozen=True)
class _Binary:
    op: str  # canonical: "+", "-" or "^"
    left: _Expr
    right: _Expr


@dataclass(frozen=True)
class _SetOf:
    words: tuple[_Word, ...]


@dataclass(frozen=True)
class _Call:
    name: str
    args: tuple[_Expr, ...]
    column: int


_Expr: TypeAlias = _Word | _Let | _Binary | _SetOf | _Call


@dataclass(frozen=True)
class _Signature:
    params: tuple[str, ...]  # each "expr", "word" (e.g. a regex) or "int" (a depth)
    required: int
    usage: str


_FUNCTIONS = {
    "allpaths": _Signature(("expr", "expr"), 2, "allpaths(from, to)"),
    "attr": _Signature(("word", "word", "expr"), 3, "attr(name, regex, expr)"),
    "deps": _Signature(("expr", "int"), 1, "deps(expr[, depth])"),
    "filter": _Signature(("word", "expr"), 2, "filter(regex, expr)"),
    "kind": _Signature(("word", "expr"), 2, "kind(regex, expr)"),
    "rdeps": _Signature(("expr", "expr", "int"), 2, "rdeps(universe, expr[, depth])"),
    "somepath": _Signature(("expr", "expr"), 2, "somepath(from, to)"),
}


# ----------------------------------------------------------------------------- parser


class _Parser:
    """LL(1) recursive descent over the token list; every error names the column."""

    def __init__(self, query: str) -> None:
        self._query = query
        self._tokens = _tokenize(query)
        self._pos = 0

    def parse(self) -> _Expr:
        expr = self._expression()
        if self._peek().kind != "eof":
            raise self._error(f"unexpected '{self._peek().text}' after the end of the expression")
        return expr

    def _peek(self, ahead: int = 0) -> _Token:
        return self._tokens[min(self._pos + ahead, len(self._tokens) - 1)]

    def _advance(self) -> _Token:
        token = self._peek()
        self._pos += 1
        return token

    def _error(self, message: str, token: _Token | None = None) -> PybuildError:
        return _syntax_error(self._query, message, (token or self._peek()).column)

    def _expect(self, kind: str) -> _Token:
        token = self._peek()
        if token.kind != kind:
            found = "" if token.kind == "eof" else f" but found '{token.text}'"
            raise self._error(f"expected '{kind}'{found}")
        return self._advance()

    def _expression(self) -> _Expr:
        # One loop for all operators gives Bazel's equal precedence and left associativity.
        expr = self._primary()
        while self._peek().kind in _OPERATORS:
            op = _OPERATORS[self._advance().kind]
            expr = _Binary(op, expr, self._primary())
        return expr

    def _primary(self) -> _Expr:
        token = self._peek()
        if token.kind == "word":
            return self._call() if self._peek(1).kind == "(" else _Word(self._advance().text, token.column)
        if token.kind == "let":
            return self._let()
        if token.kind == "set":
            return self._set()
        if token.kind == "(":
            self._advance()
            expr = self._expression()
            self._expect(")")
            return expr
        found = "" if token.kind == "eof" else f" but found '{token.text}'"
        raise self._error(f"expected an expression{found}")

    def _let(self) -> _Let:
        self._expect("let")
        name = self._expect("word")
        if not _VARIABLE_NAME.fullmatch(name.text):
            raise self._error(f"invalid variable name '{name.text}'", name)
        self._expect("=")
        value = self._expression()
        self._expect("in")
        return _Let(name.text, value, self._expression())

    def _set(self) -> _SetOf:
        self._expect("set")
        self._expect("(")
        words = []
        while self._peek().kind == "word":
            token = self._advance()
            words.append(_Word(token.text, token.column))
        self._expect(")")
        return _SetOf(tuple(words))

    def _call(self) -> _Call:
        name = self._advance()
        signature = _FUNCTIONS.get(name.text)
        if signature is None:
            known = ", ".join(sorted(_FUNCTIONS))
            raise PybuildError(
                f"unknown function '{name.text}' in query '{self._query}' at column {name.column}; "
                f"known functions: {known}"
            )
        args = self._arguments()
        _check_arguments(self._query, name, signature, args)
        return _Call(name.text, tuple(args), name.column)

    def _arguments(self) -> list[_Expr]:
        # Parse generically and validate afterwards, so arity errors can say what was expected.
        self._expect("(")
        args: list[_Expr] = []
        if self._peek().kind != ")":
            args.append(self._expression())
            while self._peek().kind == ",":
                self._advance()
                args.append(self._expression())
        self._expect(")")
        return args


def _check_arguments(query: str, name: _Token, signature: _Signature, args: list[_Expr]) -> None:
    low, high = signature.required, len(signature.params)
    if not low <= len(args) <= high:
        expected = f"{low} or {high} arguments" if low < high else f"{low} arguments"
        raise _syntax_error(
            query,
            f"{name.text}() takes {expected} but {len(args)} were given (usage: {signature.usage})",
            name.column,
        )
    for index, (param, arg) in enumerate(zip(signature.params, args, strict=False), start=1):
        if param == "expr":
            continue
        if not isinstance(arg, _Word) or (param == "int" and not re.fullmatch("[0-9]+", arg.text)):
            wanted = "a non-negative integer" if param == "int" else "a single (quoted) word"
            raise _syntax_error(
                query,
                f"argument {index} of {name.text}() must be {wanted} (usage: {signature.usage})",
                name.column,
            )


# ----------------------------------------------------------------------------- evaluator

_Scope: TypeAlias = Mapping[str, Targets]


class _Evaluator:
    """Evaluates a syntax tree to sets of targets, loading dependency graphs on demand."""

    def __init__(self, query: str, env: QueryEnvironment) -> None:
        import networkx as nx

        self._query = query
        self._env = env
        self._graph = nx.DiGraph()
        # Nodes whose out-edges are all in self._graph: every node of a transitive closure
        # qualifies, so later closures over them need no further call to the environment.
        self._complete: set[Target] = set()

    def ordered(self, expr: _Expr, scope: _Scope) -> list[Target]:
        """The top-level result: somepath keeps path order, everything else sorts by label."""
        if isinstance(expr, _Let):
            return self.ordered(expr.body, self._bind(expr, scope))
        if isinstance(expr, _Call) and expr.name == "somepath":
            return self._somepath(expr, scope)
        return sorted(self.eval(expr, scope), key=str)

    def eval(self, expr: _Expr, scope: _Scope) -> Targets:
        if isinstance(expr, _Word):
            return self._word(expr, scope)
        if isinstance(expr, _SetOf):
            return set().union(*(self._word(word, scope) for word in expr.words))
        if isinstance(expr, _Let):
            return self.eval(expr.body, self._bind(expr, scope))
        if isinstance(expr, _Binary):
            return _apply(expr.op, self.eval(expr.left, scope), self.eval(expr.right, scope))
        return set(getattr(self, f"_{expr.name}")(expr, scope))

    def load(self, roots: Iterable[Target]) -> nx.DiGraph:
        """The merged graph, guaranteed to contain the transitive closure of `roots`."""
        import networkx as nx

        missing = set(roots) - self._complete
        if missing:
            fetched = self._env.dependency_graph(sorted(missing, key=str))
            if self._graph.number_of_nodes() == 0 and not nx.is_frozen(fetched):
                self._graph = fetched  # the first closure: take it rather than copy it (60k edges for //...)
            else:
                self._graph.add_nodes_from(fetched.nodes)
                self._graph.add_edges_from(fetched.edges)
            self._graph.add_nodes_from(missing)  # a root with no deps may be absent from the edges
            self._complete |= missing | set(fetched.nodes)
        return self._graph

    def _bind(self, expr: _Let, scope: _Scope) -> _Scope:
        return {**scope, expr.name: self.eval(expr.value, scope)}

    def _word(self, word: _Word, scope: _Scope) -> Targets:
        if not word.text.startswith("$"):
            return set(self._env.resolve_pattern(word.text))
        name = word.text[1:]
        if name not in scope:
            raise PybuildError(f"undefined variable '{word.text}' in query '{self._query}' at column {word.column}")
        return scope[name]

    def _depth(self, expr: _Call, index: int) -> int | None:
        arg = expr.args[index] if len(expr.args) > index else None
        return int(arg.text) if isinstance(arg, _Word) else None

    def _deps(self, expr: _Call, scope: _Scope) -> Targets:
        roots = self.eval(expr.args[0], scope)
        return _reachable(self.load(roots).successors, roots, self._depth(expr, 1))

    def _rdeps(self, expr: _Call, scope: _Scope) -> Targets:
        universe_roots = self.eval(expr.args[0], scope)
        graph = self.load(universe_roots)
        universe = _reachable(graph.successors, universe_roots, None)
        # The merged graph may hold other closures; reverse edges must stay inside the universe.
        inside = graph.subgraph(universe)
        targets = self.eval(expr.args[1], scope) & universe
        return _reachable(inside.predecessors, targets, self._depth(expr, 2))

    def _allpaths(self, expr: _Call, scope: _Scope) -> Targets:
        sources, sinks = self.eval(expr.args[0], scope), self.eval(expr.args[1], scope)
        graph = self.load(sources)
        forward = _reachable(graph.successors, sources, None)
        backward = _reachable(graph.subgraph(forward).predecessors, sinks & forward, None)
        return forward & backward

    def _somepath(self, expr: _Call, scope: _Scope) -> list[Target]:
        sources, sinks = self.eval(expr.args[0], scope), self.eval(expr.args[1], scope)
        return _shortest_path(self.load(sources), sources, sinks)

    def _kind(self, expr: _Call, scope: _Scope) -> Targets:
        pattern = self._regex(expr, 0)
        return {t for t in self.eval(expr.args[1], scope) if pattern.search(self._env.kind(t))}

    def _filter(self, expr: _Call, scope: _Scope) -> Targets:
        pattern = self._regex(expr, 0)
        return {t for t in self.eval(expr.args[1], scope) if pattern.search(str(t))}

    def _attr(self, expr: _Call, scope: _Scope) -> Targets:
        name, pattern = _word_text(expr.args[0]), self._regex(expr, 1)
        matches = set()
        for target in self.eval(expr.args[2], scope):
            value = self._env.attribute(target, name)
            if value is not None and pattern.search(attribute_text(value)):
                matches.add(target)
        return matches

    def _regex(self, expr: _Call, index: int) -> re.Pattern[str]:
        text = _word_text(expr.args[index])
        try:
            return re.compile(text)
        except re.error as error:
            raise PybuildError(
                f"invalid regular expression '{text}' in {expr.name}() in query '{self._query}' "
                f"at column {expr.column}: {error}"
            ) from None

    def induced_graph(self, targets: list[Target]) -> nx.DiGraph:
        import networkx as nx

        graph = self.load(targets)
        members = set(targets)
        result = nx.DiGraph()
        result.add_nodes_from(targets)
        result.add_edges_from((u, v) for u in targets for v in graph.successors(u) if v in members)
        return result


def _word_text(expr: _Expr) -> str:
    assert isinstance(expr, _Word)  # guaranteed by _check_arguments
    return expr.text


def _apply(op: str, left: Targets, right: Targets) -> Targets:
    if op == "+":
        return left | right
    if op == "-":
        return left - right
    return left & right


def _reachable(neighbors: Callable[[Target], Iterable[Target]], starts: Iterable[Target], depth: int | None) -> Targets:
    """Breadth-first, so a node is first seen at its shortest distance and `depth` counts edges."""
    seen = set(starts)
    frontier = list(seen)
    level = 0
    while frontier and (depth is None or level < depth):
        next_frontier = []
        for node in frontier:
            fresh = [n for n in neighbors(node) if n not in seen]
            seen.update(fresh)
            next_frontier += fresh
        frontier, level = next_frontier, level + 1
    return seen


def _shortest_path(graph: nx.DiGraph, sources: Targets, sinks: Targets) -> list[Target]:
    """One shortest path from any source to any sink; sorted tie-breaking keeps it deterministic."""
    parent: dict[Target, Target | None] = {source: None for source in sorted(sources, key=str)}
    queue = deque(parent)
    while queue:
        node = queue.popleft()
        if node in sinks:
            return _unwind(parent, node)
        for dep in sorted(graph.successors(node) if node in graph else (), key=str):
            if dep not in parent:
                parent[dep] = node
                queue.append(dep)
    return []


def _unwind(parent: Mapping[Target, Target | None], node: Target) -> list[Target]:
    path = [node]
    while (node := parent[node]) is not None:
        path.append(node)
    return path[::-1]


def attribute_text(value: object) -> str:
    """How attr() sees a value, following Bazel so the same regexes work.

    Lists render as "[a, b]" (elements by str(), so labels appear as //pkg:name and an empty list
    as "[]"), dicts as "{k: v}", booleans as "1"/"0" (Bazel's `attr(testonly, 1, ...)`), and
    everything else by str(). Sets are sorted first so the text does not depend on hash order.
    """
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, set | frozenset):
        value = sorted(value, key=str)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(attribute_text(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{attribute_text(k)}: {attribute_text(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    return str(value)


def evaluate(expression: str, env: QueryEnvironment) -> QueryResult:
    """Parse and evaluate a query; syntax and evaluation errors raise PybuildError."""
    tree = _Parser(expression).parse()
    evaluator = _Evaluator(expression, env)
    targets = evaluator.ordered(tree, {})
    evaluator.load(targets)  # now, not when the graph is first used: loading errors belong to evaluation
    return QueryResult(targets, lambda: evaluator.induced_graph(targets))


# ----------------------------------------------------------------------------- output


def format_result(result: QueryResult, output: str, env: QueryEnvironment) -> str:
    """Render a result as --output=label|label_kind|graph|json; text ends with a newline."""
    formatter = _FORMATTERS.get(output)
    if formatter is None:
        valid = ", ".join(OUTPUT_FORMATS)
        raise PybuildError(f"unknown output format '{output}'; valid values are: {valid}", where="--output")
    return formatter(result, env)


def _format_label(result: QueryResult, env: QueryEnvironment) -> str:
    return "".join(f"{target}\n" for target in result.targets)


def _format_label_kind(result: QueryResult, env: QueryEnvironment) -> str:
    return "".join(f"{env.kind(target)} {target}\n" for target in result.targets)


def _dot_id(target: Target) -> str:
    # Labels never contain quotes or backslashes, but escaping keeps the DOT valid regardless.
    text = str(target).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _format_graph(result: QueryResult, env: QueryEnvironment) -> str:
    lines = ["digraph mygraph {", "  node [shape=box];"]
    lines += [f"  {_dot_id(target)}" for target in result.targets]
    for target in result.targets:
        for dep in sorted(_direct_deps(result, target), key=str):
            lines.append(f"  {_dot_id(target)} -> {_dot_id(dep)}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _format_json(result: QueryResult, env: QueryEnvironment) -> str:
    entries = [
        {
            "label": str(target),
            "kind": env.kind(target),
            "deps": sorted(str(dep) for dep in _direct_deps(result, target)),
        }
        for target in sorted(result.targets, key=str)
    ]
    return json.dumps(entries, indent=2) + "\n"


def _direct_deps(result: QueryResult, target: Target) -> Iterable[Target]:
    return result.graph.successors(target) if target in result.graph else ()


_FORMATTERS: dict[str, Callable[[QueryResult, QueryEnvironment], str]] = {
    "label": _format_label,
    "label_kind": _format_label_kind,
    "graph": _format_graph,
    "json": _format_json,
}

__all__ = [
    "OUTPUT_FORMATS",
    "QueryEnvironment",
    "QueryResult",
    "Target",
    "attribute_text",
    "evaluate",
    "format_result",
]
