"""MODULE.bazel: evaluated as Starlark; its declarations are recorded in ModuleInfo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pybuild.errors import PybuildError
from pybuild.labels import Label
from pybuild.starlark_host import SourceFile, StarlarkHost
from pybuild.workspace import ModuleInfo, Workspace, default_repositories, find_workspace_root


def load_workspace(start: Path) -> Workspace:
    """Find the workspace around `start` and evaluate its MODULE.bazel (if it has one)."""
    root = find_workspace_root(start)
    workspace = Workspace(root, ModuleInfo(), default_repositories(root))
    path = root / "MODULE.bazel"
    if path.is_file():
        host = StarlarkHost(workspace, {})
        source = SourceFile(path, "MODULE.bazel", Label("", "", "MODULE.bazel"))
        host.eval_plain_file(source, _module_functions(workspace.module))
    return workspace


def _module_functions(info: ModuleInfo) -> dict[str, Callable[..., Any]]:
    def module(name: str = "", version: str = "", **kwargs: Any) -> None:
        if info.name:
            raise PybuildError("module() may only be called once, as the first call in MODULE.bazel")
        info.name, info.version = name, version

    def bazel_dep(name: str, version: str = "", repo_name: str | None = None, **kwargs: Any) -> None:
        apparent = repo_name or name
        if apparent in info.bazel_deps:
            raise PybuildError(f"bazel_dep(): repository '{apparent}' is declared twice")
        info.bazel_deps[apparent] = name

    def register_toolchains(*labels: str, **kwargs: Any) -> None:
        info.registered_toolchains.extend(labels)

    def use_extension(extension_bzl_file: str, extension_name: str, **kwargs: Any) -> dict[str, str]:
        # Recorded only: an extension matters once a target uses a repository it provides.
        record = {"bzl_file": extension_bzl_file, "name": extension_name}
        info.extensions.append(record)
        return record

    def use_repo(extension: dict[str, str], *names: str, **renames: str) -> None:
        for name in names:
            info.used_repos[name] = name
        info.used_repos.update(renames)

    def ignored(*args: Any, **kwargs: Any) -> None:
        return None

    return {
        "module": module,
        "bazel_dep": bazel_dep,
        "register_toolchains": register_toolchains,
        "register_execution_platforms": ignored,
        "use_extension": use_extension,
        "use_repo": use_repo,
        "single_version_override": ignored,
        "local_path_override": ignored,
        "git_override": ignored,
        "archive_override": ignored,
    }
