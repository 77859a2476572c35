"""How analysis is cut into shares (pure logic: labels and edges, no Starlark)."""

from __future__ import annotations

import pytest

from pybuild import analysis_shares
from pybuild.analysis_shares import dependency_lists
from pybuild.labels import Label


@pytest.fixture(autouse=True)
def _small_shares(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analysis_shares, "RULES_PER_SHARE", 10)


def shares_of(
    run: list[Label], edges: list[tuple[Label, Label]], making: list[Label], rules: set[Label], processes: int
) -> list[analysis_shares.AnalysisShare]:
    return analysis_shares.analysis_shares(run, dependency_lists(edges), making, rules, processes)


def _labels(count: int, prefix: str = "t") -> list[Label]:
    return [Label("", "p", f"{prefix}{index:03d}") for index in range(count)]


def test_independent_targets_are_halved() -> None:
    run = _labels(100)
    shares = shares_of(run, [], run, set(run), 2)
    assert [share.run for share in shares] == [run[:50], run[50:]]
    assert [share.making for share in shares] == [set(map(str, run[:50])), set(map(str, run[50:]))]


def test_a_later_share_runs_what_it_depends_on_and_gets_fewer_targets_of_its_own() -> None:
    """Every target of the second half depends on the first ten, which that share runs for their providers."""
    run = _labels(100)
    edges = [(consumer, dependency) for consumer in run[50:] for dependency in run[:10]]
    first, second = shares_of(run, edges, run, set(run), 2)
    assert second.run[:10] == run[:10] and set(second.run[10:]).isdisjoint(run[:10])
    assert set(map(str, second.run[:10])).isdisjoint(second.making)
    assert first.making | second.making == set(map(str, run)) and not first.making & second.making
    assert len(first.run) == len(second.run) == 55  # 55 targets of its own, and 45 + the 10 it reads


def test_source_files_count_for_little() -> None:
    """The shares are sized by rule targets: the first holds the files too."""
    files, rules = _labels(40, "f"), _labels(100)
    run = files + rules
    first, second = shares_of(run, [], run, set(rules), 2)
    assert first.run == files + rules[:50] and second.run == rules[50:]


def test_a_chain_is_not_shared_out() -> None:
    """Each target depends on the one before: every later share would run nearly all the earlier ones."""
    run = _labels(100)
    edges = list(zip(run[1:], run[:-1], strict=True))
    shares = shares_of(run, edges, run, set(run), 2)
    assert [(share.run, share.making) for share in shares] == [(run, set(map(str, run)))]


def test_too_few_rules_for_more_than_one_process() -> None:
    run = _labels(19)
    assert len(shares_of(run, [], run, set(run), 2)) == 1
    assert len(shares_of(run + _labels(1, "x"), [], run + _labels(1, "x"), set(run + _labels(1, "x")), 4)) == 2


def test_only_the_targets_to_make_are_shared_out() -> None:
    """After an edit: `making` is part of `run`; a share runs only what its part needs of the rest."""
    run = _labels(100)
    making = run[60:]
    edges = [(target, run[0]) for target in making]
    shares = shares_of(run, edges, making, set(run), 2)
    assert [share.run for share in shares] == [[run[0], *making[:20]], [run[0], *making[20:]]]
    assert [len(share.making) for share in shares] == [20, 20]
