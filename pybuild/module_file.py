"""MODULE.bazel: evaluated as Starlark; its declarations are recorded in ModuleInfo."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pybuild.errors import PybuildError
from pybuild.labels import Label, parse_label
from pybuild.starlark_host import SourceFile, StarlarkHost
from pybuild.workspace import ModuleInfo, Workspace, default_repositories, find_workspace_root
from toolchains import local_rust

# Where `pybuild crates generate` writes BUILD files unless told otherwise.
DEFAULT_CRATES_DIR = "third_party/crates"

# A module extension is an object with one method per tag class (`rust.toolchain(...)`). Starlark
# functions cannot cross into Python, so use_extension() and use_repo() are Starlark that forward
# to the host; the tag methods are those the file calls on any name (`x.tag(`), found in its text.
_MODULE_HEADER = """
def _tag(key, tag):
    def call(**attrs):
        host_extension_tag(key, tag, attrs)
    return call

def use_extension(extension_bzl_file, extension_name, **kwargs):
    key = host_use_extension(extension_bzl_file, extension_name)
    return struct(pybuild_extension = key, **{tag: _tag(key, tag) for tag in %s})

def use_repo(extension, *names, **renames):
    if type(extension) != "struct" or not hasattr(extension, "pybuild_extension"):
        fail("use_repo(): the first argument must be the result of use_extension(), got %%s" %% type(extension))
    host_use_repo(extension.pybuild_extension, list(names), renames)
"""
_METHOD_CALL = re.compile(r"\.\s*([A-Za-z_]\w*)\s*\(")


def load_workspace(start: Path) -> Workspace:
    """Find the workspace around `start` and evaluate its MODULE.bazel (if it has one)."""
    root = find_workspace_root(start)
    workspace = Workspace(root, ModuleInfo(), default_repositories(root), {"local_rust": local_rust.write_repository})
    host = StarlarkHost(workspace, {})
    path = root / "MODULE.bazel"
    if path.is_file():
        source = SourceFile(path, "MODULE.bazel", Label("", "", "MODULE.bazel"))
        host.eval_plain_file(source, _module_functions(workspace.module), _module_header(path))
    _add_rules_rust_toolchains(host, workspace)
    _register_crate_repositories(workspace)
    return workspace


def _register_crate_repositories(workspace: Workspace) -> None:
    """Repositories written by `pybuild crates generate` for each crate.from_cargo(name = ...) tag."""
    for extension in workspace.module.extensions:
        for tag in extension["tags"]:
            if extension["name"] != "crate" or tag["tag"] != "from_cargo":
                continue
            name = tag["attrs"].get("name", "crates")
            directory = workspace.root / tag["attrs"].get("generated_dir", DEFAULT_CRATES_DIR)
            listing = directory / "repositories.json"
            if not listing.is_file():
                workspace.repository_factories[name] = _not_generated(name, directory)
                continue
            for repo, entry in json.loads(listing.read_text(encoding="utf-8")).items():
                workspace.repositories[repo] = (directory / entry["path"]).resolve()
                if "build_file" in entry:
                    workspace.build_files[repo] = directory / entry["build_file"]


def _not_generated(name: str, directory: Path) -> Callable[[Path], Path]:
    def fail(_: Path) -> Path:
        raise PybuildError(
            f"repository '@{name}' has not been generated yet: run `pybuild crates generate` "
            f"(it writes {directory}/repositories.json)"
        )

    return fail


def _add_rules_rust_toolchains(host: StarlarkHost, workspace: Workspace) -> None:
    """Toolchains that the bundled rules_rust module registers come after the root module's, as in Bazel."""
    path = workspace.repositories["rules_rust"] / "MODULE.bazel"
    bundled = ModuleInfo()
    host.eval_plain_file(
        SourceFile(path, str(path), Label("rules_rust", "", "MODULE.bazel")),
        _module_functions(bundled),
        _module_header(path),
    )
    workspace.module.registered_toolchains.extend(
        str(parse_label(t, repo="rules_rust", package="")) for t in bundled.registered_toolchains
    )


def _module_header(path: Path) -> str:
    """use_extension() and use_repo() for a MODULE.bazel, with the tag methods its text calls."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""  # eval_plain_file reports the unreadable file
    tags = sorted({name for name in _METHOD_CALL.findall(text) if not name.startswith("pybuild_")})
    return _MODULE_HEADER % json.dumps(tags)


def _module_functions(info: ModuleInfo) -> dict[str, Callable[..., Any]]:
    def module(name: str = "", version: str = "", **kwargs: Any) -> None:
        if info.name:
            raise PybuildError("module() may only be called once, as the first call in MODULE.bazel")
        info.name, info.version = name, version

    def bazel_dep(name: str, version: str = "", repo_name: str | None = None, **kwargs: Any) -> None:
        for argument, value in (("name", name), ("version", version), ("repo_name", repo_name or "")):
            if not isinstance(value, str):
                raise PybuildError(f"bazel_dep(): '{argument}' must be a string, got {value!r}")
        apparent = repo_name or name
        if apparent in info.bazel_deps:
            raise PybuildError(f"bazel_dep(): repository '{apparent}' is declared twice")
        info.bazel_deps[apparent] = name

    def register_toolchains(*labels: str, **kwargs: Any) -> None:
        info.registered_toolchains.extend(labels)

    def use_extension(extension_bzl_file: str, extension_name: str) -> int:
        # Recorded only: an extension matters once a target uses a repository it provides.
        info.extensions.append({"bzl_file": extension_bzl_file, "name": extension_name, "tags": []})
        return len(info.extensions) - 1

    def extension_tag(key: int, tag: str, attrs: dict[str, Any]) -> None:
        tags = info.extensions[key]["tags"]
        assert isinstance(tags, list)
        tags.append({"tag": tag, "attrs": attrs})

    def use_repo(key: int, names: list[str], renames: dict[str, str]) -> None:
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
        "host_use_extension": use_extension,
        "host_extension_tag": extension_tag,
        "host_use_repo": use_repo,
        "single_version_override": ignored,
        "local_path_override": ignored,
        "git_override": ignored,
        "archive_override": ignored,
    }
