"""Bazel visibility: who may depend on a target."""

from __future__ import annotations

from pybuild.errors import PybuildError
from pybuild.labels import Label

PUBLIC = Label("", "visibility", "public")
PRIVATE = Label("", "visibility", "private")
_SPECIAL_NAMES = ("__pkg__", "__subpackages__")


def _is_visibility_package(label: Label) -> bool:
    return label.package == "visibility" and label.name in ("public", "private")


def validate(labels: list[Label], owner: str) -> list[Label]:
    """Visibility labels as declared; anything but the special forms is an error (no package_group)."""
    normalized = []
    for label in labels:
        if _is_visibility_package(label):
            # //visibility:public means the same in every repository.
            normalized.append(Label("", label.package, label.name))
        elif label.name in _SPECIAL_NAMES:
            normalized.append(label)
        else:
            raise PybuildError(
                f"{owner}: invalid visibility label '{label}': use //visibility:public, //visibility:private, "
                "//pkg:__pkg__ or //pkg:__subpackages__ (package_group is not supported)"
            )
    if (PUBLIC in normalized and len(normalized) > 1) or (PRIVATE in normalized and len(normalized) > 1):
        raise PybuildError(f"{owner}: //visibility:public and //visibility:private must stand alone")
    return normalized


def is_visible(target: Label, visible_to: list[Label], consumer: Label) -> bool:
    """Whether `consumer` may depend on `target`, whose visibility list is `visible_to`."""
    if (target.repo, target.package) == (consumer.repo, consumer.package):
        return True
    for entry in visible_to:
        if entry == PUBLIC:
            return True
        if entry.repo != consumer.repo:
            continue
        if entry.name == "__pkg__" and entry.package == consumer.package:
            return True
        if entry.name == "__subpackages__" and _within(consumer.package, entry.package):
            return True
    return False


def _within(package: str, base: str) -> bool:
    return base == "" or package == base or package.startswith(base + "/")
