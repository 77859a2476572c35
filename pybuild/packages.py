"""Packages and targets: evaluating BUILD files into rule and source-file targets."""

from __future__ import annotations

import functools
import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from action_graph.fileutil import read_text_or_none
from pybuild import globbing, visibility
from pybuild.depsets import DepsetGraph
from pybuild.errors import PybuildError
from pybuild.forked_shares import can_fork, forked_shares, stderr_held, write_stderr
from pybuild.labels import Label, parse_label
from pybuild.load_cache import GlobCall, LoadCache, PackageRecord
from pybuild.loading_snapshot import LoadingSnapshot
from pybuild.rules import RuleClass, build_rule_class, coerce_attributes
from pybuild.starlark_host import SourceFile, StarlarkHost, frame_locations, text_digest
from pybuild.workspace import BUILD_FILE_NAMES, Workspace

SOURCE_FILE = "source file"
# Packages to evaluate per forked loading process at least: fewer are not worth a fork (~10-30 ms).
_PACKAGES_PER_PROCESS = 100


@dataclass
class Target:
    label: Label
    kind: str  # the rule's exported name, or "source file"
    location: str  # "pkg/BUILD.bazel:12" where the target was declared
    visibility: list[Label]
    rule_class: RuleClass | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def is_rule(self) -> bool:
        return self.rule_class is not None

    @property
    def description(self) -> str:
        return f"{self.kind} rule" if self.is_rule else SOURCE_FILE

    @functools.cached_property
    def dependency_labels(self) -> list[Label]:
        """Direct dependencies in attribute order: every label-valued attribute that is a dependency."""
        if self.rule_class is None:
            return []
        found: dict[Label, None] = {}
        attrs = self.attrs
        for name in self.rule_class.dependency_attributes():
            value = attrs.get(name)
            if value:
                found.update(dict.fromkeys(_labels_in(value)))
        return list(found)


def _labels_in(value: Any) -> list[Label]:
    if isinstance(value, Label):
        return [value]
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value)
    return []


@dataclass
class Package:
    repo: str
    name: str
    directory: Path
    build_file: str  # as shown in messages
    targets: dict[str, Target] = field(default_factory=dict)
    default_visibility: list[Label] = field(default_factory=lambda: [visibility.PRIVATE])
    exported_files: dict[str, Target] = field(default_factory=dict)
    package_called: bool = False
    _files: list[str] | None = None
    _file_set: frozenset[str] = frozenset()
    _sources: dict[str, Target] = field(default_factory=dict)  # source-file targets already looked up

    @property
    def label(self) -> str:
        return str(Label(self.repo, self.name, "x")).rsplit(":", 1)[0]

    def files(self) -> list[str]:
        if self._files is None:
            self.set_files(globbing.package_files(self.directory))
        assert self._files is not None
        return self._files

    def set_files(self, files: list[str]) -> None:
        """The package's file listing (from package_files, or from a walk that already made it)."""
        self._files = files
        self._file_set = frozenset(files)

    def target(self, name: str) -> Target:
        if name in self.targets:
            return self.targets[name]
        if name in self.exported_files:
            return self.exported_files[name]
        if name in self._sources:
            return self._sources[name]
        if self._is_source_file(name):
            self._sources[name] = self._source_file(name, [visibility.PRIVATE])
            return self._sources[name]
        raise PybuildError(
            f"no such target '{Label(self.repo, self.name, name)}': target '{name}' not declared in "
            f"package '{self.name}' defined by {self.build_file}"
        )

    def names_source_files(self, names: tuple[str, ...]) -> bool:
        """Whether target(name) is a source file for each of `names`, without making their targets (the load
        cache asks of every source file an analysis read)."""
        if self._file_set.issuperset(names) and self.targets.keys().isdisjoint(names):
            return True  # the usual case, answered by two set operations: listed files, none a rule's name
        return all(map(self._names_source_file, names))

    def _names_source_file(self, name: str) -> bool:
        known = self.targets.get(name) or self.exported_files.get(name) or self._sources.get(name)
        return not known.is_rule if known is not None else self._is_source_file(name)

    def _is_source_file(self, name: str) -> bool:
        # A listed file is one (the listing skips subpackages); anything else, e.g. a file in an ignored
        # directory, gets the direct check. The listing is not made just for this: it may be large.
        if name in self._file_set:
            return True
        return os.path.isfile(os.path.join(self.directory, name)) and not self._in_subpackage(name)

    def _in_subpackage(self, name: str) -> bool:
        """Whether a directory between the package and the file has its own BUILD file (no listing needed)."""
        parts = name.split("/")[:-1]
        return any(globbing.is_package_dir(os.path.join(self.directory, *parts[:i])) for i in range(1, len(parts) + 1))

    def _source_file(self, name: str, visible_to: list[Label]) -> Target:
        return Target(Label(self.repo, self.name, name), SOURCE_FILE, f"{self.build_file}:1", visible_to)

    def rule_targets(self) -> list[Target]:
        return [t for t in self.targets.values() if t.is_rule]

    def frozen(self) -> tuple[tuple[Any, ...], list[RuleClass]]:
        """What the BUILD file declared, as plain data for the load cache, and the rule classes its
        targets use (the data names them by index). File listings and source targets are left out:
        they describe the disk, not the BUILD file."""
        rule_classes: list[RuleClass] = []
        index: dict[int, int] = {}
        targets = []
        for target in self.targets.values():
            rule_class, attrs = target.rule_class, target.attrs
            if rule_class is not None:
                if id(rule_class) not in index:
                    index[id(rule_class)] = len(rule_classes)
                    rule_classes.append(rule_class)
                defaults = rule_class.defaults()
                # Only what differs from the defaults: thawed() starts from them, as loading does.
                attrs = {name: value for name, value in attrs.items() if value is not defaults.get(name)}
            which = None if rule_class is None else index[id(rule_class)]
            targets.append((target.label, target.kind, target.location, target.visibility, which, attrs))
        exported = [(t.label, t.kind, t.location, t.visibility) for t in self.exported_files.values()]
        data = (self.repo, self.name, self.build_file, targets, exported)
        return (*data, self.default_visibility, self.package_called), rule_classes

    @staticmethod
    def declaration_keys(data: tuple[Any, ...], rule_keys: list[str], context: str) -> tuple[str, dict[str, str]]:
        """Digests of what frozen()'s data declares: of the whole package, and of each target by name, without
        where a target was declared, which only messages show. `rule_keys` name the rule classes in the data's
        order; `context` is what else the declarations mean something by (the .bzl files loaded)."""
        repo, name, build_file, targets, exported, *rest = data
        # Half a digest per target: 128 bits tell two declarations apart, and 10,000 of them are kept.
        keys = {
            label.name: text_digest(
                repr((label, kind, visible_to, rule_keys[which] if which is not None else None, given, context))
            )[:32]
            for label, kind, _, visible_to, which, given in targets
        }
        exported = [(label, kind, visible_to) for label, kind, _, visible_to in exported]
        return text_digest(repr((repo, name, build_file, list(keys.items()), exported, *rest))), keys

    @classmethod
    def thawed(cls, data: tuple[Any, ...], rule_classes: list[RuleClass], directory: Path) -> Package:
        """The package frozen() described, its targets using `rule_classes`."""
        repo, name, build_file, targets, exported, default_visibility, package_called = data
        package = cls(repo, name, directory, build_file, default_visibility=default_visibility)
        package.package_called = package_called
        for label, kind, location, visible_to, which, given in targets:
            rule_class = None if which is None else rule_classes[which]
            attrs = given if rule_class is None else {**rule_class.defaults(), **given}
            package.targets[label.name] = Target(label, kind, location, visible_to, rule_class, attrs)
        for label, kind, location, visible_to in exported:
            package.exported_files[label.name] = Target(label, kind, location, visible_to)
        return package


class PackageLoader:
    """Evaluates BUILD files on demand and keeps every package, rule class and provider it has seen."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.rule_classes: dict[int, RuleClass] = {}
        self.provider_names: dict[int, str] = {}
        self._packages: dict[tuple[str, str], Package] = {}
        self._current: Package | None = None
        self._ids = itertools.count(1)
        self.depsets = DepsetGraph()
        self.host = StarlarkHost(workspace, self._host_functions())
        self.load_cache = LoadCache(workspace, lambda: next(self._ids))
        self.snapshot = LoadingSnapshot(workspace, self.load_cache) if self.load_cache.enabled else None
        # The load cache record of each cacheable package loaded, for its keys (see package_key, target_key).
        self._records: dict[tuple[str, str], PackageRecord] = {}
        self._globs: list[GlobCall] = []  # glob() calls of the BUILD file being evaluated
        self._listings: dict[tuple[str, str], list[str]] = {}  # see offer_listings
        self._cacheable = True
        self.loading_processes = os.cpu_count() or 1  # --loading_phase_threads: see load_packages

    def _host_functions(self) -> dict[str, Any]:
        return {
            "host_register_rule": self._register_rule,
            "host_export_rule": self._export_rule,
            "host_register_provider": self._register_provider,
            "host_export_provider": self._export_provider,
            "host_provider_name": lambda key: self.provider_names.get(key, "<unexported provider>"),
            "host_new_depset": self._new_depset,
            "host_instantiate": self._instantiate,
            "glob": self._glob,
            "package": self._package,
            "exports_files": self._exports_files,
            "package_name": lambda: self._build_context("package_name").name,
            "repository_name": lambda: "@" + self._build_context("repository_name").repo,
            "existing_rules": self._existing_rules,
        }

    def _new_depset(self, node_json: str) -> int:
        """A new depset node's id, from [paths of its direct Files (None: not all are Files), ids of its
        children]; negative while a .bzl file's top level runs, where the depset is frozen with its module,
        so bzl_prelude.bzl computes its items at once instead of on first use."""
        paths, children = json.loads(node_json)
        return self.new_depset_node(paths, children, frozen=self.host.loading_bzl)

    def new_depset_node(self, paths: list[str] | None, children: list[int], frozen: bool = False) -> int:
        """Register a depset node; its id (negative for one frozen with a .bzl module)."""
        node = -next(self._ids) if frozen else next(self._ids)
        self.depsets.add(node, paths, children)
        return node

    # Packages -------------------------------------------------------------------------------------

    def package_dir(self, repo: str, name: str) -> Path:
        return self.workspace.repository_root(repo) / name

    def build_file(self, repo: str, name: str) -> Path | None:
        if not name and repo in self.workspace.build_files:
            return self.workspace.build_files[repo]
        directory = os.path.join(self.workspace.repository_root(repo), name)  # os.path: once per package
        found = next((n for n in BUILD_FILE_NAMES if os.path.isfile(os.path.join(directory, n))), None)
        return None if found is None else Path(directory, found)

    def package(self, repo: str, name: str) -> Package:
        key = (repo, name)
        if key not in self._packages:
            self._packages[key] = self._load_package(repo, name)
        return self._packages[key]

    def load_packages(self, repo: str, names: list[str]) -> None:
        """Load the packages `names` (in order) that are not loaded yet, their BUILD files shared out among
        up to `loading_processes` processes: this one and forked copies (Bazel loads packages in parallel
        too). A share ends up here as if loaded here; what a copy could not hand back (an error, a package
        the load cache cannot vouch for) is left to `package`, so errors come in order, as without copies."""
        todo = [name for name in names if (repo, name) not in self._packages and not self._in_snapshot(repo, name)]
        processes = min(self.loading_processes, len(todo) // _PACKAGES_PER_PROCESS)
        if processes < 2 or not can_fork():
            return
        self.package(repo, todo[0])  # first, so that every copy starts with the .bzl files it loaded
        size = -(-(len(todo) - 1) // processes)
        shares = [todo[1 + i * size : 1 + (i + 1) * size] for i in range(processes)]  # this process's first
        with forked_shares(lambda share: self._hand_over(repo, share), shares[1:]) as copies:
            for name in shares[0]:
                self.package(repo, name)
            handed = copies.results()
            copies.write_stderr()  # after this process's share, as it would come loading them all here
        for share in handed:
            for name, (record, rule_classes) in (share or {}).items():
                self._adopt(repo, name, record, rule_classes)

    def _in_snapshot(self, repo: str, name: str) -> bool:
        snapshot = self._snapshot_for(repo)
        return snapshot is not None and snapshot.package(name) is not None

    def _hand_over(self, repo: str, names: list[str]) -> dict[str, Any]:
        """In a forked copy: load the packages and hand back each that a record describes, up to the first
        that fails. The loading process meets that one again, in order, and stops there; so what its BUILD
        file printed is left to it, and no package after it is of use."""
        handed = {}
        for name in names:
            try:
                with stderr_held() as printed:
                    self.package(repo, name)
            except PybuildError:
                break
            write_stderr(printed.output)
            record = self._records.get((repo, name))
            if record is not None:
                handed[name] = LoadCache.handed_over(record)
        return handed

    def _adopt(self, repo: str, name: str, handed: Any, rule_classes: dict[str, RuleClass]) -> None:
        """Take a package a forked copy loaded, as `_load_package` would have."""
        record = self.load_cache.adopt(repo, name, handed, rule_classes)
        package = self._cached_package(repo, name, record, self._listing(repo, name)) if record is not None else None
        if package is None:
            return
        self._packages[repo, name] = package
        self._add_to_snapshot(repo, name, package)

    def package_key(self, repo: str, name: str) -> str | None:
        """The key of what the package declares (loading it first); None if it cannot be cached.

        It names the package's targets and their rules, not how the BUILD file spelled them, so analysis
        entries that record it stay valid across an edit that changes neither, such as a comment or a
        reformatting: Bazel's change pruning.
        """
        self.package(repo, name)
        record = self._records.get((repo, name))
        return record.content_key if record is not None else None

    def target_key(self, label: Label) -> str | None:
        """The key of what the target's package declares of it, as package_key is of the whole package."""
        self.package(label.repo, label.package)
        record = self._records.get((label.repo, label.package))
        return record.target_keys.get(label.name) if record is not None else None

    def loaded_packages(self) -> dict[tuple[str, str], str | None]:
        """Every package loaded so far, with its package_key."""
        return {key: self.package_key(*key) for key in self._packages}

    def target(self, label: Label) -> Target:
        return self.package(label.repo, label.package).target(label.name)

    def are_source_files(self, repo: str, package: str, names: tuple[str, ...]) -> bool:
        return self.package(repo, package).names_source_files(names)

    def offer_listings(self, repo: str, listings: dict[str, list[str]]) -> None:
        """File listings of packages not loaded yet, made by a walk of the workspace (find_packages)."""
        for name, files in listings.items():
            if (repo, name) not in self._packages:
                self._listings[repo, name] = files

    def _load_package(self, repo: str, name: str) -> Package:
        """From the load cache when nothing the BUILD file's evaluation saw has changed, else evaluated."""
        snapshot = self._snapshot_for(repo)
        recorded = snapshot.package(name) if snapshot is not None else None
        if recorded is not None:
            record = self.load_cache.entry_record(recorded.entry)
            package = self._cached_package(repo, name, record, _Listing(self.package_dir(repo, name), recorded.files))
            if package is not None:
                return package
        package = self._load_checked_package(repo, name)
        self._add_to_snapshot(repo, name, package)
        return package

    def _snapshot_for(self, repo: str) -> LoadingSnapshot | None:
        return self.snapshot if not repo else None  # it covers the main repository

    def _add_to_snapshot(self, repo: str, name: str, package: Package) -> None:
        """A package loaded without the snapshot joins the next one, if a walk this process used found it."""
        snapshot = self._snapshot_for(repo)
        if snapshot is not None and snapshot.walked(name):
            snapshot.add_package(name, package.files())

    def _listing(self, repo: str, name: str) -> _Listing:
        """The package's file listing, taken from a walk of the workspace if one offered it."""
        return _Listing(self.package_dir(repo, name), self._listings.pop((repo, name), None))

    def save_snapshot(self) -> None:
        """Write the loading snapshot, if this process loaded what the last one did not have."""
        if self.snapshot is not None:
            self.snapshot.save()

    def _load_checked_package(self, repo: str, name: str) -> Package:
        path = self.build_file(repo, name)
        if path is None:
            shown = str(Label(repo, name, "x")).rsplit(":", 1)[0]
            raise PybuildError(f"no such package '{shown}': BUILD file not found in {self.package_dir(repo, name)}")
        text = read_text_or_none(path)  # None: unreadable, which evaluation reports
        listing = self._listing(repo, name)
        if text is not None:
            record = self.load_cache.lookup_package(repo, name, path, text, self._bzl_path, listing.files)
            package = self._cached_package(repo, name, record, listing)
            if package is not None:
                return package
        return self._evaluate_package(repo, name, path, text, listing)

    def _cached_package(self, repo: str, name: str, record: PackageRecord | None, listing: _Listing) -> Package | None:
        """The package a load cache record describes, with its file listing; None without a record or if the
        record is damaged."""
        package = _thawed(record, listing.directory) if record is not None else None
        if record is None or package is None:
            return None
        self._records[repo, name] = record
        return listing.give_to(package)

    def _evaluate_package(self, repo: str, name: str, path: Path, text: str | None, listing: _Listing) -> Package:
        display = self.workspace.display_path(path)
        package = listing.give_to(Package(repo, name, listing.directory, display))  # glob() may use it
        build_label = Label(repo, name, path.name)
        self._current, self._globs, self._cacheable = package, [], text is not None
        try:
            self.host.eval_build_file(SourceFile(path, display, build_label), text)
        finally:
            self._current = None
        if self._cacheable and text is not None:
            bzl_files = tuple(self.host.loaded_bzl_files(build_label))
            frozen, rule_classes = package.frozen()
            content_key, target_keys = _declaration_keys(frozen, rule_classes, bzl_files)
            globs = tuple(self._globs)
            record = PackageRecord(
                str(path), text_digest(text), bzl_files, globs, frozen, rule_classes, content_key, target_keys
            )
            self.load_cache.store_package(repo, name, record)
            self._records[repo, name] = record
        return package

    def _bzl_path(self, label: Label) -> Path:
        return self.workspace.repository_root(label.repo) / label.package / label.name

    def _build_context(self, function: str) -> Package:
        if self._current is None:
            raise PybuildError(f"{function}() can only be used while evaluating a BUILD file")
        if self.host.loading_bzl:
            # A .bzl file's top level saw this package: the module (shared by later packages) depends on
            # which package loaded it first, which the load cache cannot key on.
            self._cacheable = False
        return self._current

    # Rules and providers --------------------------------------------------------------------------

    def _register_rule(
        self,
        implementation: str,
        attrs: dict[str, Any],
        executable: bool,
        test: bool,
        toolchain_types: list[str],
        build_setting: str | None,
    ) -> int:
        rule_id = next(self._ids)
        defined_in = self.host.current_file()
        self.rule_classes[rule_id] = build_rule_class(
            rule_id, implementation, defined_in, attrs, bool(executable), bool(test), toolchain_types, build_setting
        )
        return rule_id

    def _export_rule(self, rule_id: int, name: str) -> None:
        rule_class = self.rule_classes[rule_id]
        if rule_class.kind is None:
            rule_class.kind = name

    def _register_provider(self, doc: str, fields: list[str] | None) -> int:
        return next(self._ids)

    def _export_provider(self, key: int, name: str) -> None:
        self.provider_names.setdefault(key, name)

    def _instantiate(self, rule_id: int, name: Any, kwargs: str | dict[str, Any], call_stack: str) -> None:
        if isinstance(kwargs, str):
            kwargs = json.loads(kwargs)  # the prelude sends attribute values as one JSON text (faster)
        package = self._build_context("a rule")
        rule_class = self.rule_classes[rule_id]
        location = frame_locations(call_stack)[0]
        try:
            self._add_rule_target(package, rule_class, name, kwargs, location)
        except PybuildError as error:
            error.where = error.where or location
            raise

    def _add_rule_target(
        self, package: Package, rule_class: RuleClass, name: Any, kwargs: dict[str, Any], location: str
    ) -> None:
        if rule_class.kind is None:
            raise PybuildError("this rule was not exported: assign the result of rule() to a global name")
        if not isinstance(name, str):
            raise PybuildError(f"{rule_class.description}: missing or invalid mandatory attribute 'name'")
        label = parse_label(":" + name, repo=package.repo, package=package.name)
        if name in package.targets:
            raise PybuildError(f"target '{label}' is declared twice: first at {package.targets[name].location}")

        def resolve(text: str) -> Label:
            return parse_label(text, repo=package.repo, package=package.name)

        attrs = coerce_attributes(rule_class, str(label), kwargs, resolve)
        declared = attrs["visibility"]
        target_visibility = visibility.validate(declared, str(label)) if declared else package.default_visibility
        package.targets[name] = Target(label, rule_class.kind, location, target_visibility, rule_class, attrs)

    # Native functions -----------------------------------------------------------------------------

    def _glob(
        self,
        include: list[str],
        exclude: list[str] | None = None,
        exclude_directories: int = 1,
        allow_empty: bool = False,
    ) -> list[str]:
        package = self._build_context("glob")
        for argument, value in (("include", include), ("exclude", exclude or [])):
            if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
                raise PybuildError(f"glob(): '{argument}' must be a list of strings, got {value!r}")
        result = globbing.glob(package.files(), include, exclude or [], bool(allow_empty))
        self._globs.append((tuple(include), tuple(exclude or []), bool(allow_empty), tuple(result)))
        return result

    def _package(self, default_visibility: list[str] | None = None, **kwargs: Any) -> None:
        package = self._build_context("package")
        if package.package_called:
            raise PybuildError("package() can only be called once per BUILD file")
        if package.targets:
            raise PybuildError("package() must be called before any rule in the BUILD file")
        package.package_called = True
        if default_visibility is not None:
            labels = [parse_label(v, repo=package.repo, package=package.name) for v in default_visibility]
            package.default_visibility = visibility.validate(labels, f"package {package.label}")

    def _exports_files(self, srcs: list[str], visibility_: list[str] | None = None, **kwargs: Any) -> None:
        package = self._build_context("exports_files")
        requested = kwargs.pop("visibility", visibility_)
        labels = [parse_label(v, repo=package.repo, package=package.name) for v in requested or []]
        visible_to = visibility.validate(labels, f"exports_files in {package.label}") if labels else [visibility.PUBLIC]
        for name in srcs:
            label = parse_label(name, repo=package.repo, package=package.name)
            package.exported_files[label.name] = package._source_file(label.name, visible_to)

    def _existing_rules(self) -> dict[str, dict[str, Any]]:
        package = self._build_context("existing_rules")
        return {
            name: {"name": name, "kind": t.kind, **{k: starlark_value(v) for k, v in t.attrs.items()}}
            for name, t in package.targets.items()
        }


class _Listing:
    """A package's file listing, made at most once whether the load cache or glob() asks first."""

    def __init__(self, directory: Path, files: list[str] | None) -> None:
        self.directory = directory
        self._files = files  # from a walk of the workspace, when there was one

    def files(self) -> list[str]:
        if self._files is None:
            self._files = globbing.package_files(self.directory)
        return self._files

    def give_to(self, package: Package) -> Package:
        if self._files is not None and package._files is None:
            package.set_files(self._files)
        return package


def _declaration_keys(
    frozen: tuple[Any, ...], rule_classes: list[RuleClass], bzl_files: tuple[Any, ...]
) -> tuple[str, dict[str, str]]:
    """See PackageLoader.package_key and target_key. The .bzl files the BUILD file loaded count: the rules'
    implementations are among them, and analysis runs those."""
    rules = [rule_class.cache_key for rule_class in rule_classes]
    return Package.declaration_keys(frozen, rules, text_digest(repr(bzl_files)))


def _thawed(record: PackageRecord, directory: Path) -> Package | None:
    try:
        return Package.thawed(record.package, record.rule_classes, directory)
    except Exception:  # an entry of the right version but damaged: evaluate the BUILD file instead
        return None


def starlark_value(value: Any) -> Any:
    """Attribute values as Starlark sees them: labels become strings again."""
    if isinstance(value, Label):
        return str(value)
    if isinstance(value, list):
        return [starlark_value(v) for v in value]
    if isinstance(value, dict):
        return {starlark_value(k): starlark_value(v) for k, v in value.items()}
    return value
