"""Unit tests for pybuild.labels: Bazel's label and target-pattern grammar."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pybuild.errors import LabelError, PybuildError
from pybuild.labels import Label, TargetPattern, parse_label, parse_target_pattern

# ---------------------------------------------------------------------------------------------
# parse_label: absolute forms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("//a/b:c", Label("", "a/b", "c")),
        ("//a/b", Label("", "a/b", "b")),
        ("//a", Label("", "a", "a")),
        ("//:c", Label("", "", "c")),
        ("//a/b:src/lib.rs", Label("", "a/b", "src/lib.rs")),
        ("@r//a/b:c", Label("r", "a/b", "c")),
        ("@@r//a/b:c", Label("r", "a/b", "c")),
        ("@r//a/b", Label("r", "a/b", "b")),
        ("@r//:c", Label("r", "", "c")),
        ("@r", Label("r", "", "r")),
        ("@@r", Label("r", "", "r")),
        ("@//a:b", Label("", "a", "b")),
        ("@@//a:b", Label("", "a", "b")),
        ("@rules_rust~0.40.0//rust:toolchain", Label("rules_rust~0.40.0", "rust", "toolchain")),
        ("@@rules_rust+//rust", Label("rules_rust+", "rust", "rust")),
        ("@_main//a:b", Label("_main", "a", "b")),
        ("//a-b/c.d/e_f g:x", Label("", "a-b/c.d/e_f g", "x")),
        ("//a/b:weird name!+$(x)@#", Label("", "a/b", "weird name!+$(x)@#")),
        ("//a:caf\u00e9.rs", Label("", "a", "caf\u00e9.rs")),
        ("//a:...", Label("", "a", "...")),
        ("//a:.hidden/x..y", Label("", "a", ".hidden/x..y")),
    ],
)
def test_parse_absolute_label(text: str, expected: Label) -> None:
    assert parse_label(text) == expected


def test_absolute_label_ignores_package_context() -> None:
    assert parse_label("//x:y", package="a/b") == Label("", "x", "y")


# ---------------------------------------------------------------------------------------------
# parse_label: repository context


def test_double_slash_label_is_relative_to_the_containing_repo() -> None:
    # `//x` written in a BUILD file of repo R means @R//x, as in Bazel.
    assert parse_label("//x:y", repo="R") == Label("R", "x", "y")
    assert parse_label("//x", repo="R", package="p") == Label("R", "x", "x")


def test_explicit_repo_wins_over_context() -> None:
    assert parse_label("@other//x:y", repo="R") == Label("other", "x", "y")
    assert parse_label("@@other//x:y", repo="R") == Label("other", "x", "y")
    assert parse_label("@other", repo="R") == Label("other", "", "other")


def test_at_double_slash_is_main_repo_even_inside_another_repo() -> None:
    assert parse_label("@//x:y", repo="R") == Label("", "x", "y")
    assert parse_label("@@//x:y", repo="R") == Label("", "x", "y")


def test_relative_labels_take_the_context_repo() -> None:
    assert parse_label(":y", repo="R", package="p") == Label("R", "p", "y")
    assert parse_label("y.rs", repo="R", package="p") == Label("R", "p", "y.rs")


# ---------------------------------------------------------------------------------------------
# parse_label: relative forms


@pytest.mark.parametrize(
    ("text", "package", "expected"),
    [
        (":c", "a/b", Label("", "a/b", "c")),
        ("c", "a/b", Label("", "a/b", "c")),
        ("src/lib.rs", "a/b", Label("", "a/b", "src/lib.rs")),
        (":src/lib.rs", "a/b", Label("", "a/b", "src/lib.rs")),
        (":c", "", Label("", "", "c")),
        ("c", "", Label("", "", "c")),
    ],
)
def test_parse_relative_label(text: str, package: str, expected: Label) -> None:
    assert parse_label(text, package=package) == expected


# ---------------------------------------------------------------------------------------------
# parse_label: errors

REPO_CHARS = "repository names may contain only A-Z, a-z, 0-9, '_', '.', '~', '+' and '-'"
COLON = "target names may not contain ':' (a label has one ':', between package and target)"
NO_ROOT_NAME = "the root package has no default target name; add ':name'"


def error_message(parse: Callable[[], object]) -> str:
    with pytest.raises(LabelError) as info:
        parse()
    return info.value.message


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "a label may not be empty"),
        (":", "the target name is empty"),
        ("//a:", "the target name is empty"),
        ("//a:b:c", COLON),
        ("@/x", f"{REPO_CHARS}, not '/'"),
        ("/abs", "it starts with a single '/' (did you mean '//abs'?)"),
        ("//a//b:c", "package names may not contain '//'"),
        ("//", NO_ROOT_NAME),
        ("@r//", NO_ROOT_NAME),
        ("//a/:b", "package names may not end with '/'"),
        ("///a:b", "package names may not start with '/'"),
        ("//a/./b:c", "package names may not contain a '.' path segment"),
        ("//a/../b:c", "package names may not contain a '..' path segment"),
        ("//a/...:c", "package names may not contain a '...' path segment"),
        ("//..:c", "package names may not contain a '..' path segment"),
        ("//a\\b:c", "package names may not contain '\\'"),
        ("//caf\u00e9:c", "package names may not contain the non-ASCII character '\u00e9'"),
        ("//a\tb:c", "package names may not contain the control character '\\t'"),
        ("//a/./b", "package names may not contain a '.' path segment (perhaps you meant ':b'?)"),
        ("//a:/b", "target names may not start with '/'"),
        ("//a:b/", "target names may not end with '/'"),
        ("//a:b//c", "target names may not contain '//'"),
        ("//a:.", "target names may not contain a '.' path segment"),
        ("//a:..", "target names may not contain a '..' path segment"),
        ("//a:b/./c", "target names may not contain a '.' path segment"),
        ("//a:../c", "target names may not contain a '..' path segment"),
        ("//a:b\\c", "target names may not contain '\\'"),
        ("//a:b\x7f", "target names may not contain the control character '\\x7f'"),
        ("@", "the repository name is empty"),
        ("@@", "the repository name is empty"),
        ("@r:x", f"{REPO_CHARS}, not ':'"),
        ("@a b//x", f"{REPO_CHARS}, not ' '"),
        ("@.//x", "'.' is not a valid repository name"),
        ("@..//x", "'..' is not a valid repository name"),
        ("@~r//x", "repository names may not start with '~' (shells expand it)"),
        ("@@@r//x", f"{REPO_CHARS}, not '@'"),
        # Relative texts, with a package context so that they fail for their syntax.
        ("a:b", "a package name must start with '//' (did you mean '//a:b'?)"),
        ("../x", "target names may not contain a '..' path segment"),
        ("a/", "target names may not end with '/'"),
        ("a:b:c", "a package name must start with '//' (did you mean '//a:b:c'?)"),
        (":b:c", COLON),
    ],
)
def test_invalid_label(text: str, reason: str) -> None:
    assert error_message(lambda: parse_label(text, package="p")) == f"invalid label '{text}': {reason}"


@pytest.mark.parametrize("text", [":x", "x", "dir/file.rs"])
def test_relative_label_without_package_context_is_an_error(text: str) -> None:
    assert error_message(lambda: parse_label(text)) == f"relative label '{text}' needs a package context"


def test_label_error_is_a_pybuild_error_with_no_location() -> None:
    with pytest.raises(LabelError) as info:
        parse_label("//a:b:c")
    assert isinstance(info.value, PybuildError)
    assert info.value.where is None
    assert info.value.render() == f"ERROR: invalid label '//a:b:c': {COLON}"


# ---------------------------------------------------------------------------------------------
# Label methods


@pytest.mark.parametrize(
    ("label", "text", "package_id"),
    [
        (Label("", "a/b", "b"), "//a/b:b", "//a/b"),
        (Label("", "", "x"), "//:x", "//"),
        (Label("r", "a", "src/lib.rs"), "@r//a:src/lib.rs", "@r//a"),
        (Label("r", "", "r"), "@r//:r", "@r//"),
    ],
)
def test_str_and_package_id(label: Label, text: str, package_id: str) -> None:
    assert str(label) == text
    assert label.package_id == package_id


@pytest.mark.parametrize(
    "text",
    ["//a/b", "//a/b:c", "//:x", "@r", "@@r//a", "@r//a/b:src/lib.rs", "//a:caf\u00e9 x.rs", "@//a"],
)
def test_str_round_trip(text: str) -> None:
    label = parse_label(text)
    assert parse_label(str(label)) == label


def test_str_round_trip_of_relative_label_in_other_repo() -> None:
    label = parse_label(":x", repo="R", package="a/b")
    assert str(label) == "@R//a/b:x"
    assert parse_label(str(label)) == label


def test_sibling() -> None:
    label = Label("r", "a/b", "c")
    assert label.sibling("d.rs") == Label("r", "a/b", "d.rs")
    with pytest.raises(LabelError, match="invalid target name 'x/': target names may not end with '/'"):
        label.sibling("x/")
    with pytest.raises(LabelError, match="the target name is empty"):
        label.sibling("")


def test_labels_sort_by_repo_then_package_then_name() -> None:
    labels = [
        Label("z", "", "a"),
        Label("", "b", "a"),
        Label("", "a", "z"),
        Label("a", "a", "a"),
        Label("", "a", "b"),
        Label("", "", "z"),
    ]
    assert sorted(labels) == [
        Label("", "", "z"),
        Label("", "a", "b"),
        Label("", "a", "z"),
        Label("", "b", "a"),
        Label("a", "a", "a"),
        Label("z", "", "a"),
    ]


def test_label_is_frozen_and_hashable() -> None:
    label = Label("", "a", "b")
    assert {label, parse_label("//a:b")} == {label}
    with pytest.raises(AttributeError):
        label.name = "c"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# parse_target_pattern: absolute forms


def pattern(
    repo: str = "",
    package: str = "",
    kind: str = "single",
    recursive: bool = False,
    name: str | None = None,
    negative: bool = False,
    text: str = "",
    fallback: Label | None = None,
) -> TargetPattern:
    return TargetPattern(repo, package, kind, recursive, name, negative, text, fallback)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("//...", pattern(kind="rules", recursive=True)),
        ("//...:all", pattern(kind="rules", recursive=True)),
        ("//...:*", pattern(kind="all_targets", recursive=True)),
        ("//a/b/...", pattern(package="a/b", kind="rules", recursive=True)),
        ("//a/b/...:all", pattern(package="a/b", kind="rules", recursive=True)),
        ("//a/b/...:*", pattern(package="a/b", kind="all_targets", recursive=True)),
        ("//a/b/...:all-targets", pattern(package="a/b", kind="all_targets", recursive=True)),
        ("//a/b:all", pattern(package="a/b", kind="rules")),
        ("//a/b:*", pattern(package="a/b", kind="all_targets")),
        ("//a/b:all-targets", pattern(package="a/b", kind="all_targets")),
        ("//:all", pattern(kind="rules")),
        ("//:*", pattern(kind="all_targets")),
        ("//a/b:c", pattern(package="a/b", name="c")),
        ("//a/b", pattern(package="a/b", name="b")),
        ("//:c", pattern(name="c")),
        ("//a:src/lib.rs", pattern(package="a", name="src/lib.rs")),
        ("@r//...", pattern(repo="r", kind="rules", recursive=True)),
        ("@@r//a/...:*", pattern(repo="r", package="a", kind="all_targets", recursive=True)),
        ("@r//a:all", pattern(repo="r", package="a", kind="rules")),
        ("@r//a:b", pattern(repo="r", package="a", name="b")),
        ("@r", pattern(repo="r", name="r")),
        ("@//a:b", pattern(package="a", name="b")),
        ("-//a:x", pattern(package="a", name="x", negative=True)),
        ("-//a/...", pattern(package="a", kind="rules", recursive=True, negative=True)),
        ("-@r//a:all", pattern(repo="r", package="a", kind="rules", negative=True)),
    ],
)
def test_parse_absolute_pattern(text: str, expected: TargetPattern) -> None:
    expected = TargetPattern(**{**expected.__dict__, "text": text})
    assert parse_target_pattern(text) == expected


def test_absolute_pattern_ignores_working_package() -> None:
    assert parse_target_pattern("//a:b", working_package="x/y").package == "a"
    assert parse_target_pattern("//...", working_package="x/y").package == ""


def test_absolute_pattern_without_colon_has_no_fallback() -> None:
    assert parse_target_pattern("//a/b").fallback is None


def test_pattern_keeps_original_text() -> None:
    assert parse_target_pattern("-foo:bar", working_package="wp").text == "-foo:bar"


# ---------------------------------------------------------------------------------------------
# parse_target_pattern: relative forms


@pytest.mark.parametrize(
    ("text", "wp", "expected"),
    [
        ("...", "", pattern(kind="rules", recursive=True)),
        ("...", "wp", pattern(package="wp", kind="rules", recursive=True)),
        ("...:*", "wp", pattern(package="wp", kind="all_targets", recursive=True)),
        ("foo/...", "wp", pattern(package="wp/foo", kind="rules", recursive=True)),
        ("foo/...:all-targets", "wp", pattern(package="wp/foo", kind="all_targets", recursive=True)),
        (":name", "wp", pattern(package="wp", name="name")),
        (":name", "", pattern(name="name")),
        ("foo:bar", "wp", pattern(package="wp/foo", name="bar")),
        ("foo:bar", "", pattern(package="foo", name="bar")),
        (":all", "wp", pattern(package="wp", kind="rules")),
        (":*", "wp", pattern(package="wp", kind="all_targets")),
        ("foo:all", "", pattern(package="foo", kind="rules")),
        ("-:x", "wp", pattern(package="wp", name="x", negative=True)),
        ("-...", "wp", pattern(package="wp", kind="rules", recursive=True, negative=True)),
        # '.' and '..' are resolved like a shell would.
        ("../x:y", "a/b", pattern(package="a/x", name="y")),
        ("..:all", "a/b", pattern(package="a", kind="rules")),
        ("../...", "a/b", pattern(package="a", kind="rules", recursive=True)),
        ("../../...", "a/b", pattern(kind="rules", recursive=True)),
        ("./x:y", "a", pattern(package="a/x", name="y")),
        (".:y", "a", pattern(package="a", name="y")),
    ],
)
def test_parse_relative_pattern(text: str, wp: str, expected: TargetPattern) -> None:
    expected = TargetPattern(**{**expected.__dict__, "text": text})
    assert parse_target_pattern(text, working_package=wp) == expected


@pytest.mark.parametrize(
    ("text", "wp", "package", "name", "fallback"),
    [
        ("foo/bar", "wp", "wp/foo/bar", "bar", Label("", "wp/foo", "bar")),
        ("foo/bar", "", "foo/bar", "bar", Label("", "foo", "bar")),
        ("foo", "wp", "wp/foo", "foo", Label("", "wp", "foo")),
        ("foo", "", "foo", "foo", Label("", "", "foo")),
        ("src/main.rs", "a", "a/src/main.rs", "main.rs", Label("", "a/src", "main.rs")),
        ("../x", "a/b", "a/x", "x", Label("", "a", "x")),
        ("..", "a/b", "a", "a", Label("", "", "a")),
        (".", "a/b", "a/b", "b", Label("", "a", "b")),
    ],
)
def test_relative_pattern_without_colon_has_fallback(
    text: str, wp: str, package: str, name: str, fallback: Label
) -> None:
    parsed = parse_target_pattern(text, working_package=wp)
    assert parsed == pattern(package=package, name=name, text=text, fallback=fallback)


def test_relative_pattern_that_can_only_be_a_file_has_no_fallback() -> None:
    # Package names must be ASCII, file names need not be: only the `//wp/foo:name` reading is left.
    parsed = parse_target_pattern("foo/caf\u00e9.rs", working_package="wp")
    assert parsed == pattern(package="wp/foo", name="caf\u00e9.rs", text="foo/caf\u00e9.rs")


def test_relative_pattern_invalid_in_both_readings_is_an_error() -> None:
    message = error_message(lambda: parse_target_pattern("foo//bar", working_package="wp"))
    assert (
        message == "invalid target pattern 'foo//bar': package names may not contain '//' (perhaps you meant ':bar'?)"
    )


def test_fallback_is_none_for_every_other_form() -> None:
    for text in ["//a", "//a:b", ":b", "a:b", "...", "a/...", ":all", "@r", "@r//a"]:
        assert parse_target_pattern(text, working_package="wp").fallback is None, text


# ---------------------------------------------------------------------------------------------
# parse_target_pattern: errors


@pytest.mark.parametrize(
    ("text", "wp", "reason"),
    [
        ("", "", "a target pattern may not be empty"),
        ("-", "", "a target pattern may not be empty"),
        ("//a/...:b", "", "only ':all', ':*' or ':all-targets' may follow '...', not ':b'"),
        ("...:b", "wp", "only ':all', ':*' or ':all-targets' may follow '...', not ':b'"),
        ("//a:b:c", "", COLON),
        ("//a:", "", "the target name is empty"),
        ("//", "", NO_ROOT_NAME),
        ("//a//b:c", "", "package names may not contain '//'"),
        ("//a//b/...", "", "package names may not contain '//'"),
        ("//a/./...", "", "package names may not contain a '.' path segment"),
        ("//a//b:all", "", "package names may not contain '//'"),
        ("@/x", "", f"{REPO_CHARS}, not '/'"),
        ("-@/x", "", f"{REPO_CHARS}, not '/'"),
        ("@//a:b:c", "", COLON),
        ("/abs", "", "it starts with a single '/' (did you mean '//abs'?)"),
        ("-/abs", "", "it starts with a single '/' (did you mean '//abs'?)"),
        ("..", "", "'..' goes above the workspace root"),
        ("../../...", "a", "'..' goes above the workspace root"),
        ("../../x:y", "a", "'..' goes above the workspace root"),
        (".", "", NO_ROOT_NAME),
        ("foo/", "wp", "package names may not end with '/'"),
        ("a\\b", "", "package names may not contain '\\'"),
        ("foo:b/", "", "target names may not end with '/'"),
    ],
)
def test_invalid_target_pattern(text: str, wp: str, reason: str) -> None:
    message = error_message(lambda: parse_target_pattern(text, working_package=wp))
    assert message == f"invalid target pattern '{text}': {reason}"


# ---------------------------------------------------------------------------------------------
# TargetPattern.matches_package


@pytest.mark.parametrize(
    ("text", "package", "matches"),
    [
        ("//...", "", True),
        ("//...", "a/b/c", True),
        ("//a/...", "a", True),
        ("//a/...", "a/b", True),
        ("//a/...", "a/b/c", True),
        ("//a/...", "ab", False),
        ("//a/...", "b/a", False),
        ("//a/...", "", False),
        ("//a:all", "a", True),
        ("//a:all", "a/b", False),
        ("//a:b", "a", True),
        ("//a:b", "ab", False),
        ("//:all", "", True),
        ("//:all", "a", False),
    ],
)
def test_matches_package(text: str, package: str, matches: bool) -> None:
    assert parse_target_pattern(text).matches_package(package) is matches
