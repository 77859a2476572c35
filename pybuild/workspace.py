"""The workspace: its root, its MODULE.bazel, and the repositories labels can name."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from action_graph.fileutil import atomic_symlink
from pybuild.errors import PybuildError

WORKSPACE_MARKERS = ("MODULE.bazel", "REPO.bazel", "WORKSPACE.bazel", "WORKSPACE")
BUILD_FILE_NAMES = ("BUILD.bazel", "BUILD")
OUTPUT_DIR_NAME = "pybuild-out"
BIN_LINK_NAME = "pybuild-bin"  # the convenience link to the last build's bin directory
# Internal repository that holds pybuild's own Starlark (rule(), attr, native functions).
BUILTINS_REPO = "pybuild_builtins"


def bundled_dir(name: str) -> Path:
    """A directory shipped with pybuild: `rules` or `toolchains`, in a wheel or in a source checkout."""
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir / "_bundled" / name, package_dir.parent / name):
        if candidate.is_dir():
            return candidate
    raise PybuildError(f"pybuild installation is incomplete: bundled directory '{name}' not found")


def find_workspace_root(start: Path) -> Path:
    for directory in (start, *start.parents):
        if any((directory / marker).is_file() for marker in WORKSPACE_MARKERS):
            return directory
    raise PybuildError(
        f"not inside a workspace: no {' or '.join(WORKSPACE_MARKERS)} found in {start} or any parent directory"
    )


@dataclass
class ModuleInfo:
    """What MODULE.bazel declared. Recorded so later layers (toolchains, crates) can use it."""

    name: str = ""
    version: str = ""
    bazel_deps: dict[str, str] = field(default_factory=dict)  # apparent repo name -> module name
    registered_toolchains: list[str] = field(default_factory=list)
    extensions: list[dict[str, object]] = field(default_factory=list)
    used_repos: dict[str, str] = field(default_factory=dict)  # apparent name -> repo exported by an extension


@dataclass
class Workspace:
    root: Path
    module: ModuleInfo
    repositories: dict[str, Path]  # repository name ("" = main) -> directory
    # Repositories made on first use (like Bazel's repository rules), e.g. @local_rust from `rustc -vV`.
    repository_factories: dict[str, Callable[[Path], Path]] = field(default_factory=dict)
    # BUILD files kept outside a repository's tree (Bazel's build_file = ...), for crate sources.
    build_files: dict[str, Path] = field(default_factory=dict)

    @property
    def output_base(self) -> Path:
        return self.root / OUTPUT_DIR_NAME

    @property
    def external_dir(self) -> Path:
        return self.output_base / "external"

    @property
    def history_dir(self) -> Path:
        """What earlier builds measured of each action (duration, peak memory): the scheduler's estimates.
        It outlives `pybuild clean`, as ninja's build log outlives `ninja -t clean`: a clean build is when
        knowing which crates take long matters most."""
        return self.output_base / "history"

    def link_external_repository(self, repo: str) -> None:
        """Make `pybuild-out/external/<repo>` (how actions name the repository's files) lead to it."""
        root = self.repository_root(repo)
        link = self.external_dir / repo
        if link.resolve() != root.resolve():
            atomic_symlink(root, link)

    def exec_prefix(self, repo: str) -> str:
        """Where a repository's files appear relative to the execution root."""
        return "" if repo == "" else f"{OUTPUT_DIR_NAME}/external/{repo}/"

    def repository_root(self, repo: str) -> Path:
        if repo in self.repositories:
            return self.repositories[repo]
        if repo in self.repository_factories:
            self.repositories[repo] = self.repository_factories[repo](self.external_dir / repo)
            return self.repositories[repo]
        known = ", ".join(f"@{name}" for name in sorted(self.repositories) if name and name != BUILTINS_REPO)
        raise PybuildError(f"no such repository '@{repo}' (known repositories: {known or 'none'})")

    def display_path(self, path: Path) -> str:
        """How a file is named in messages: relative to the workspace when inside it."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def working_package(self, cwd: Path) -> str:
        """The package path of `cwd`, for relative target patterns ("" at the root)."""
        try:
            relative = Path(os.path.realpath(cwd)).relative_to(os.path.realpath(self.root))
        except ValueError:
            return ""
        return "" if str(relative) == "." else relative.as_posix()


def default_repositories(root: Path) -> dict[str, Path]:
    builtins = Path(__file__).resolve().parent / "builtins"
    return {
        "": root,
        "rules_rust": bundled_dir("rules"),
        "pybuild_toolchains": bundled_dir("toolchains"),
        BUILTINS_REPO: builtins,
    }
