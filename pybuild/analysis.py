"""The analysis phase: rule implementations run (in Starlark) and produce the action graph."""

from __future__ import annotations

import json
import platform
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from action_graph.action import Action
from action_graph.graph import ActionGraph, OutputConflictError
from action_graph.list_schedule import reachable
from pybuild.analysis_shares import AnalysisShare, analysis_shares, dependency_lists, with_dependencies
from pybuild.errors import PybuildError
from pybuild.forked_shares import can_fork, forked_shares, stderr_held, write_stderr
from pybuild.gc_pause import collector_paused
from pybuild.labels import Label, parse_label
from pybuild.load_cache import CachedAnalysis
from pybuild.packages import PackageLoader, starlark_value
from pybuild.rules import MISSING, RuleClass
from pybuild.target_graph import TargetGraphLoader, dependencies_first, reject_cycles
from pybuild.workspace import OUTPUT_DIR_NAME

# Targets per top-level statement of the driver: garbage is collected after each (see _driver_source).
_CHUNK_TARGETS = 200
_CPU_NAMES = {"x86_64": "k8", "amd64": "k8", "aarch64": "aarch64", "arm64": "aarch64"}


Summary = tuple[list[str], str | None, list[str]]  # a rule target's files, executable and runfiles (TargetSummary)


@dataclass
class BuildConfig:
    """What the command line decided: compilation mode and build setting values."""

    compilation_mode: str = "fastbuild"
    build_settings: dict[Label, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{_CPU_NAMES.get(platform.machine().lower(), platform.machine())}-{self.compilation_mode}"

    @property
    def bin_dir(self) -> str:
        return f"{OUTPUT_DIR_NAME}/{self.name}/bin"


@dataclass
class TargetSummary:
    """What later phases need of an analyzed target."""

    files: list[str]
    executable: str | None
    runfiles: list[str]


@dataclass
class AnalysisResult:
    """What analysis made. Held as plain strings and tuples: a warm command reads it back from the load cache,
    and 22,000 labels and 10,000 summaries as objects took ~0.04 s of that at 10,000 targets."""

    config: BuildConfig
    actions: ActionGraph
    summaries: dict[str, Summary]  # label text -> files, executable, runfiles
    closure: tuple[str, ...]  # label text of every target analysis reached, source files included

    def summary(self, label: Label) -> TargetSummary:
        return TargetSummary(*self.summaries[str(label)])


class Analysis:
    """Runs rule implementations over the dependency closure of some targets.

    The load cache holds the last result: unchanged, it is the answer; after an edit, or for other targets
    of the same configuration, it is the starting point, and only the targets the edit reaches run again
    (see _Kept)."""

    def __init__(self, graph_loader: TargetGraphLoader, config: BuildConfig) -> None:
        self.graph_loader = graph_loader
        self.loader = graph_loader.loader
        self.workspace = self.loader.workspace
        self.config = config
        self.actions = ActionGraph()
        self._current: str | None = None  # the label of the target being analyzed
        self._making: set[str] = set()  # the targets (label texts) whose actions the share analyzed makes
        self._resolved_toolchains: dict[Label, Label] = {}
        self._depsets = self.loader.depsets
        self._strings = self._depsets.strings
        self._input_lists: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._inputs_by_refs: dict[tuple[str | int, ...], tuple[str, ...]] = {}
        self._last_environment: tuple[dict[str, str] | None, tuple[tuple[str, str], ...]] = (None, ())
        self.loader.host.add_host_functions(
            {
                "host_begin_target": self._begin_target,
                "host_register_action": self._register_action,
            }
        )

    @collector_paused
    def run(self, labels: list[Label]) -> AnalysisResult:
        key, latest = self._cache_keys(labels)
        loader = self.loader
        cached = loader.load_cache.lookup_analysis(key, latest)
        if cached is not None and cached.exact and cached.unchanged(loader.package_key, loader.are_source_files):
            return self._reused(cached)
        nodes, order, edges = self._target_graph(labels)  # which also finds any source file gone since
        # From here only what stands of the previous analysis is held: all of it held ~70 MiB more at
        # 10,000 targets, where an edit low in the graph leaves little standing.
        kept = _Kept.of(cached, nodes, edges, loader) if cached is not None else None
        del cached
        # After an edit, only edges with an end the edit touched: an edge's visibility depends on nothing
        # but its ends' labels and what the dependency's package declares.
        self.graph_loader.check_visibility(edges if kept is None else kept.touching(edges))
        result = self._analyze(nodes, order, edges, kept)
        self._store(key, latest, result, nodes)
        return result

    def _analyze(
        self, nodes: list[Label], order: list[Label], edges: list[tuple[Label, Label]], kept: _Kept | None
    ) -> AnalysisResult:
        """Run the rule implementations: of every target, or with what `kept` of a previous analysis, of the
        fresh targets and, for their providers, of what they depend on."""
        for repo in sorted({label.repo for label in order if label.repo}):
            self.workspace.link_external_repository(repo)
        dependencies = dependency_lists(edges)
        run = order if kept is None else with_dependencies(order, kept.fresh, dependencies)
        making = run if kept is None else [label for label in run if label in kept.fresh]
        rules = {label for label in run if self.loader.target(label).rule_class is not None}
        shares = analysis_shares(run, dependencies, making, rules, self.loader.loading_processes)
        if len(shares) == 1:
            self.actions, found = self._analyze_share(shares[0], edges)
        else:
            made = self._analyze_shares(run, edges, shares)
            self.actions, found = made or self._analyze_share(AnalysisShare(run, set(map(str, making))), edges)
        if kept is not None:
            self.actions, found = kept.merged(order, self.actions, found)
        self.actions.link(kept.producers if kept is not None else None)
        return AnalysisResult(self.config, self.actions, found, tuple(map(str, nodes)))

    def _analyze_shares(
        self, run: list[Label], edges: list[tuple[Label, Label]], shares: list[AnalysisShare]
    ) -> tuple[ActionGraph, dict[str, Summary]] | None:
        """The shares analyzed by this process (the first) and forked copies of it (the others, at once). None
        if a copy failed, or their actions clash: this process then analyzes everything, as without copies,
        and so reports any error exactly as then. What rule implementations print comes out in share order
        once the shares are merged, and not at all if they are not (the analysis that follows prints it)."""
        if not can_fork():
            return None
        with forked_shares(lambda share: self._handed_over(share, edges), shares[1:]) as copies:
            try:
                with stderr_held() as own:
                    actions, found = self._analyze_share(shares[0], edges)
            except PybuildError:
                write_stderr(own.output)
                raise
            made = _merged(run, actions, found, copies.results())
            if made is not None:
                write_stderr(own.output)
                copies.write_stderr()
        return made

    def _handed_over(
        self, share: AnalysisShare, edges: list[tuple[Label, Label]]
    ) -> tuple[list[Action], dict[str, Summary]] | None:
        """In a forked copy: the share's actions and summaries."""
        try:
            actions, found = self._analyze_share(share, edges)
        except PybuildError:
            return None  # the analyzing process meets it again, in order
        return actions.actions, found

    def _analyze_share(
        self, share: AnalysisShare, edges: list[tuple[Label, Label]]
    ) -> tuple[ActionGraph, dict[str, Summary]]:
        """Run the rule implementations of `share.run`, in order, and keep the actions and summaries of the
        targets the share makes."""
        run = share.run
        self.actions = ActionGraph()
        self._making = share.making
        rule_classes = {t.rule_class.rule_id: t.rule_class for t in map(self.loader.target, run) if t.rule_class}
        released = _released_after_chunk(run, edges)

        def chunk(index: int) -> dict[str, Any]:
            # Made when the driver asks: the data of every target at once held ~55 MiB at 10,000 targets.
            in_chunk = run[index * _CHUNK_TARGETS : (index + 1) * _CHUNK_TARGETS]
            targets = [self._target_data(label, self._toolchains_of(label)) for label in in_chunk]
            # One JSON text, which analysis.bzl decodes: ~3 times faster than converting the values one by one.
            return json.dumps({"targets": targets, "released": released.get(index, [])})

        summaries: dict[str, dict[str, Any]] = {}
        functions = {
            "host_analysis_config": self._config_data,
            "host_analysis_rules": lambda: json.dumps([self._rule_data(r) for r in rule_classes.values()]),
            "host_analysis_chunk": chunk,
            "host_analysis_summaries": lambda found: summaries.update(found),
        }
        chunks = -(-len(run) // _CHUNK_TARGETS)
        try:
            self.loader.host.eval_driver(_driver_source(rule_classes.values(), chunks), functions)
        except PybuildError as error:
            raise self._in_current_target(error) from None
        making = share.making
        return self.actions, {
            label: (v["files"], v["executable"], v["runfiles"]) for label, v in summaries.items() if label in making
        }

    # The load cache ----------------------------------------------------------------------------------

    def _cache_keys(self, labels: list[Label]) -> tuple[str, str]:
        """The key of everything analysis depends on besides the packages (which the entry records and checks),
        and that of the same without the targets asked for: the last analysis of this configuration."""
        settings = sorted((str(label), repr(value)) for label, value in self.config.build_settings.items())
        module = self.workspace.module
        config = (self.config.compilation_mode, self.config.name, settings, module.name, module.registered_toolchains)
        cache = self.loader.load_cache
        return cache.analysis_key(("analysis", [str(label) for label in labels], *config)), cache.analysis_key(config)

    def _reused(self, cached: CachedAnalysis) -> AnalysisResult:
        for repo in cached.repositories:
            self.workspace.link_external_repository(repo)
        result = cached.result
        self.actions = result.actions
        result.config = self.config
        return result

    def _store(self, key: str, latest: str, result: AnalysisResult, nodes: list[Label]) -> None:
        packages = self.loader.loaded_packages()
        if None in packages.values():
            return  # a package the cache cannot vouch for (see PackageLoader._build_context)
        loader = self.loader
        rules = {label for label in nodes if loader.target(label).is_rule}
        # Keyed by the summaries' own label texts: the entry then holds each text once.
        texts = {text: text for text in result.summaries}
        targets = {texts.get(str(label), str(label)): loader.target_key(label) or "" for label in rules}
        sources = [label for label in nodes if label not in rules]
        repositories = {label.repo for label in nodes if label.repo}
        result.actions.token = uuid.uuid4().hex  # this result, wherever it is read again
        loader.load_cache.store_analysis(key, latest, packages, targets, sources, repositories, result)

    # The target graph, with toolchains -------------------------------------------------------------

    def _target_graph(self, labels: list[Label]) -> tuple[list[Label], list[Label], list[tuple[Label, Label]]]:
        """The targets to analyze, toolchains included, the same in analysis order (dependencies first), and
        the edges between them (toolchain edges included). Visibility is not checked yet (see run)."""
        nodes, edges = self.graph_loader.dependency_closure(labels)
        toolchain_edges: list[tuple[Label, Label]] = []
        asking = [(label, types) for label in nodes if (types := self._toolchain_types(label))]
        if asking:
            resolved = self._resolved_toolchains = self.resolve_toolchains({t for _, types in asking for t in types})
            more_nodes, more_edges = self.graph_loader.dependency_closure(resolved.values(), known=set(nodes))
            nodes, edges = nodes + more_nodes, edges + more_edges
            asking += [(label, types) for label in more_nodes if (types := self._toolchain_types(label))]
            toolchain_edges = [(label, resolved[t]) for label, types in asking for t in types]
        all_edges = edges + toolchain_edges
        # The ordering finds cycles: a separate pass over 60,000 edges to look for them cost ~0.1 s.
        order = dependencies_first(nodes, all_edges)
        if len(order) < len(nodes):  # a cycle: of dependencies alone, or closed by a toolchain
            reject_cycles(nodes, edges)
            reject_cycles(nodes, all_edges, " through a toolchain")
        return nodes, order, all_edges

    def _toolchain_types(self, label: Label) -> list[Label]:
        rule_class = self.loader.target(label).rule_class
        return rule_class.toolchain_types if rule_class else []

    def resolve_toolchains(self, types: set[Label]) -> dict[Label, Label]:
        """First registered toolchain() of each type wins, as in Bazel without platform constraints."""
        registered = self.graph_loader.resolve_patterns(self.workspace.module.registered_toolchains)
        resolved: dict[Label, Label] = {}
        for label in registered:
            target = self.loader.target(label)
            if target.kind == "toolchain":
                resolved.setdefault(target.attrs["toolchain_type"], target.attrs["toolchain"])
        missing = sorted(str(t) for t in types if t not in resolved)
        if missing:
            raise PybuildError(
                f"no toolchain registered for type {', '.join(missing)}: add register_toolchains(...) to MODULE.bazel"
            )
        return {t: resolved[t] for t in types}

    def _toolchains_of(self, label: Label) -> dict[str, str]:
        """The toolchain the target gets for each type its rule asks for (by label text)."""
        return {str(t): str(self._resolved_toolchains[t]) for t in self._toolchain_types(label)}

    # Data handed to Starlark -----------------------------------------------------------------------

    def _target_data(self, label: Label, toolchains: dict[str, str]) -> dict[str, Any]:
        target = self.loader.target(label)
        prefix = self.workspace.exec_prefix(label.repo)
        common = {"label": str(label), "rule_id": None}
        if target.rule_class is None:
            short = label.name if not label.package else f"{label.package}/{label.name}"
            short_path = short if not label.repo else f"../{label.repo}/{short}"
            # The file's depset node is made here: one host call per source file from Starlark cost more.
            node = self.loader.new_depset_node([prefix + short], [])
            return {**common, "path": prefix + short, "short_path": short_path, "node": node}
        rule_class = target.rule_class
        defaults = rule_class.defaults()
        package_path = (prefix.removeprefix(f"{OUTPUT_DIR_NAME}/") + label.package).strip("/")
        given = {k: v for k, v in target.attrs.items() if v is not defaults[k] and v != defaults[k]}
        data = {
            **common,
            "rule_id": rule_class.rule_id,
            # What the BUILD file set: analysis.bzl has the defaults once per rule (see _rule_data).
            "attrs": {k: starlark_value(v) for k, v in given.items()},
            "label_parts": {"name": label.name, "package": label.package, "repo": label.repo},
            "package_path": package_path,
            "workspace_root": prefix.rstrip("/"),
            "toolchains": toolchains,
        }
        if rule_class.build_setting:
            data["build_setting_value"] = self.config.build_settings.get(label, target.attrs["build_setting_default"])
        return data

    @staticmethod
    def _rule_data(rule_class: RuleClass) -> list[Any]:
        """[rule id, what every target of the rule shares]: its dependency attributes and its defaults."""
        defaults = {name: starlark_value(v) for name, v in rule_class.defaults().items() if v is not MISSING}
        dep_attrs = {name: rule_class.attrs[name].type for name in rule_class.dependency_attributes()}
        return [rule_class.rule_id, {"dep_attrs": dep_attrs, "defaults": defaults}]

    def _config_data(self) -> dict[str, Any]:
        return {
            "bin_dir": self.config.bin_dir,
            "var": {"COMPILATION_MODE": self.config.compilation_mode, "BINDIR": self.config.bin_dir},
            "workspace_name": self.workspace.module.name or "_main",
        }

    # Host functions --------------------------------------------------------------------------------

    def _begin_target(self, label: str) -> None:
        self._current = label  # its Target is looked up only for an error (see _in_current_target)

    def _register_action(self, spec: str | dict[str, Any]) -> None:
        if self._current not in self._making:
            return  # analyzed for its providers alone: its actions are the previous analysis's
        if isinstance(spec, str):
            spec = json.loads(spec)  # analysis.bzl sends the action as one JSON text (faster)
        assert isinstance(spec, dict)
        owner = self._current or "<unknown>"
        outputs = self._interned(spec["outputs"])
        if not outputs:
            raise PybuildError(f"action {spec['mnemonic']} of {owner} declares no outputs")
        message = spec.get("progress_message", "").replace("%{label}", owner).replace("%{output}", outputs[0])
        action = Action(
            mnemonic=spec["mnemonic"],
            owner=owner,
            argv=self._interned(spec["argv"]),
            outputs=outputs,
            inputs=self._inputs(spec["inputs"]),
            env=self._environment(spec.get("env") or {}),
            progress_message=message or f"{spec['mnemonic']} {outputs[0]}",
            execution_requirements=tuple(sorted((spec.get("execution_requirements") or {}).items())),
            content=spec.get("content"),
            is_executable=bool(spec.get("is_executable", False)),
            output_directories=tuple(spec.get("output_directories") or ()),
        )
        try:
            self.actions.add(action)
        except OutputConflictError as error:
            raise PybuildError(str(error)) from None

    def _inputs(self, refs: list[str | int]) -> tuple[str, ...]:
        """The paths of an action's inputs from analysis.bzl's references (paths, and depsets by id),
        in order, each once. A crate's actions share their references, so they are flattened once."""
        key = tuple(refs)
        inputs = self._inputs_by_refs.get(key)
        if inputs is None:
            inputs = self._inputs_by_refs[key] = self._flattened(refs)
        return inputs

    def _flattened(self, refs: list[str | int]) -> tuple[str, ...]:
        if all(type(ref) is str for ref in refs):
            inputs = self._interned(dict.fromkeys(refs))
        else:
            parts = [self._depsets.paths(ref) if type(ref) is int else self._interned((ref,)) for ref in refs]
            inputs = parts[0] if len(parts) == 1 else tuple(dict.fromkeys(chain.from_iterable(parts)))
        # One tuple per distinct list: actions of different crates may read the same inputs, and they are
        # most of the memory and of the load cache's analysis entry (which pickles a tuple once).
        return self._input_lists.setdefault(inputs, inputs)

    def _interned(self, values: Any) -> tuple[Any, ...]:
        """One string object per distinct text: the toolchain's ~100 paths are in every rustc action, so
        this saves memory and makes the pickled analysis (the load cache) small."""
        strings = self._strings
        values = tuple(values)
        if set(map(type, values)) <= {str}:  # the usual case, checked and done without a Python loop
            return tuple(map(strings.setdefault, values, values))
        return tuple(strings.setdefault(v, v) if type(v) is str else v for v in values)

    def _environment(self, env: dict[str, str]) -> tuple[tuple[str, str], ...]:
        """An action's environment, its texts shared: a crate's actions have the same one (made once), and every
        crate the same names (16 of the 238 MiB that 10,000 analyzed targets hold in Python were copies of them)."""
        if env != self._last_environment[0]:  # a crate's actions come one after another: keep only the last
            strings = self._strings
            shared = tuple(sorted((strings.setdefault(k, k), strings.setdefault(v, v)) for k, v in env.items()))
            self._last_environment = (env, shared)
        return self._last_environment[1]

    def _in_current_target(self, error: PybuildError) -> PybuildError:
        if self._current is None:
            return error
        target = self.loader.target(parse_label(self._current))
        location = f" ({error.where})" if error.where else ""
        return PybuildError(f"in {target.description} {target.label}: {error.message}{location}", target.location)


@dataclass
class _Kept:
    """What stands of a previous analysis: the actions and summaries of every target but the fresh ones."""

    fresh: set[Label]  # the targets to analyze anew (see _fresh_targets)
    fresh_texts: set[str]  # the same, as label texts (action owners and summary keys are)
    touched: set[Label]  # the targets of changed packages, and those the previous analysis did not reach
    actions: dict[str, list[Action]]  # owner -> its actions, in the order it made them
    summaries: dict[str, Summary]
    # Primary output -> the token of the analysis that made the action (ActionGraph.earlier_tokens): the
    # up-to-date check of execution then trusts what it knows of the kept actions.
    tokens: dict[str, str]
    producers: Mapping[str, tuple[str, ...]]  # of each kept action (see ActionGraph.link)

    @classmethod
    def of(
        cls,
        previous: CachedAnalysis,
        nodes: list[Label],
        edges: list[tuple[Label, Label]],
        loader: PackageLoader,
    ) -> _Kept:
        known = set(previous.result.closure)
        changed = previous.changed({(label.repo, label.package) for label in nodes}, loader.package_key)
        touched = {label for label in nodes if (label.repo, label.package) in changed or str(label) not in known}
        fresh = _fresh_targets(previous, known, touched, edges, loader)
        fresh_texts = set(map(str, fresh))
        result = previous.result
        graph: ActionGraph = result.actions
        actions = {owner: made for owner, made in _by_owner(graph.actions).items() if owner not in fresh_texts}
        summaries = {label: summary for label, summary in result.summaries.items() if label not in fresh_texts}
        nodes_kept = [action.primary_output for kept in actions.values() for action in kept]
        tokens = {node: token for node in nodes_kept if (token := graph.token_of(node))}
        producers = graph.predecessors()
        kept_producers = {node: producers[node] for node in nodes_kept}
        return cls(fresh, fresh_texts, touched, actions, summaries, tokens, kept_producers)

    def touching(self, edges: list[tuple[Label, Label]]) -> list[tuple[Label, Label]]:
        """The edges with an end in `touched`."""
        touched = self.touched
        return [edge for edge in edges if edge[0] in touched or edge[1] in touched]

    def merged(
        self, order: list[Label], made: ActionGraph, found: dict[str, Summary]
    ) -> tuple[ActionGraph, dict[str, Summary]]:
        """The actions and summaries a full analysis makes, in its order: the fresh targets' as this analysis
        `made` and `found` them, the others' as they stand."""
        fresh, new = self.fresh_texts, _by_owner(made.actions)
        graph = ActionGraph()
        graph.earlier_tokens = self.tokens
        summaries = {}
        for label in map(str, order):
            actions, known = (new, found) if label in fresh else (self.actions, self.summaries)
            try:
                for action in actions.get(label, ()):
                    graph.add(action)  # checked again: a fresh output may clash with a kept one's path
            except OutputConflictError as error:
                raise PybuildError(str(error)) from None
            if label in known:
                summaries[label] = known[label]
        return graph, summaries


def _fresh_targets(
    previous: CachedAnalysis,
    known: set[str],
    touched: set[Label],
    edges: list[tuple[Label, Label]],
    loader: PackageLoader,
) -> set[Label]:
    """The targets whose analysis may differ from the previous one: those it did not reach (`known` holds
    those it did), those declared otherwise since (each `touched` target of a changed package is compared by
    its key), and every target that depends on one of them (their providers may differ). Everything else a
    rule implementation reads is in the analysis key, as Bazel invalidates configured targets along reverse
    dependencies."""
    declared = previous.targets
    seeds = [
        label for label in touched if str(label) not in known or declared.get(str(label)) != loader.target_key(label)
    ]
    dependents: dict[Label, list[Label]] = {}
    for consumer, dependency in edges:
        dependents.setdefault(dependency, []).append(consumer)
    return reachable(seeds, dependents)


def _merged(
    run: list[Label], actions: ActionGraph, found: dict[str, Summary], handed: list[Any]
) -> tuple[ActionGraph, dict[str, Summary]] | None:
    """The first share's actions and summaries with those the copies handed over; None if a copy failed or
    two shares declare clashing outputs."""
    try:
        for share in handed:
            if share is None:
                return None
            for action in share[0]:
                actions.add(action)
            found.update(share[1])
    except OutputConflictError:
        return None
    return actions, {label: found[label] for label in map(str, run) if label in found}


def _by_owner(actions: list[Action]) -> dict[str, list[Action]]:
    owned: dict[str, list[Action]] = {}
    for action in actions:
        owned.setdefault(action.owner, []).append(action)
    return owned


def _released_after_chunk(order: list[Label], edges: list[tuple[Label, Label]]) -> dict[int, list[str]]:
    """Per chunk, the targets no later chunk reads: analysis.bzl drops their providers after that chunk.

    What a target provides is read only by the targets that depend on it, so a target's providers are
    needed until its last dependent in analysis order is analyzed. Dropping them then lets starlark-rust
    collect whatever of them no later target reaches: the peak RSS of a cold analysis of 10,000 targets
    went from 547 to 325 MiB.
    """
    position = {label: index for index, label in enumerate(order)}
    last_reader = position.copy()  # a target with no dependents: its own chunk needs it (for its summary)
    for consumer, dependency in edges:
        if consumer in position:  # `order` may be part of the graph: some targets and all they depend on
            last_reader[dependency] = max(last_reader[dependency], position[consumer])
    released: dict[int, list[str]] = {}
    for label, index in last_reader.items():
        released.setdefault(index // _CHUNK_TARGETS, []).append(str(label))
    return released


def _driver_source(rule_classes: Any, chunks: int) -> str:
    """A module that loads every rule used by the targets and analyzes them with analysis.bzl, one chunk of
    targets per top-level statement: starlark-rust collects garbage only between top-level statements, so
    one call analyzing everything would keep every temporary value of every rule implementation."""
    lines = ['load("@pybuild_builtins//:analysis.bzl", "analysis_state", "analyze")']
    entries = []
    for index, rule_class in enumerate(sorted(rule_classes, key=lambda r: r.rule_id)):
        lines.append(f'load("{rule_class.defined_in}", _r{index} = "{rule_class.kind}")')
        entries.append(f"{rule_class.rule_id}: _r{index}")
    lines.append(f"_state = analysis_state({{{', '.join(entries)}}}, host_analysis_rules(), host_analysis_config())")
    lines.extend(f"host_analysis_summaries(analyze(_state, host_analysis_chunk({i})))" for i in range(chunks))
    return "\n".join(lines) + "\n"
