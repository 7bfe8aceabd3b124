"""Named registries: condensers, models, and whatever else is chosen by name on a command line.

A :class:`Registry` maps lower-case names to entries (classes or builder functions). Entries register
themselves next to their definition with the :meth:`Registry.register` decorator; registering a name
twice is an error, so two entries can never shadow each other silently. Looking up an unknown name
raises a one-line ``ValueError`` that lists the available names and suggests the closest one.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'y'?"`` for the choice closest to ``name`` (difflib), or ``""`` when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown_name_message(kind: str, name: str, choices: Iterable[str]) -> str:
    """``unknown <kind> 'x'; did you mean 'y'? available: a, b, y`` (the hint only when one is close)."""
    choices = sorted(choices)
    return f"unknown {kind} {name!r}{did_you_mean(name, choices) or ';'} available: {', '.join(choices)}"


class Registry(Generic[T]):
    """Entries of one ``kind`` (e.g. ``"condensation method"``) under unique, case-insensitive names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: file the decorated class or function under ``name``; a taken name raises ``ValueError``."""
        key = name.strip().lower()

        def add(entry: T) -> T:
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} is already registered (to {self._entries[key]!r})")
            self._entries[key] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        """The entry registered as ``name`` (any case); an unknown name raises ``ValueError``."""
        key = name.strip().lower()
        if key not in self._entries:
            raise ValueError(unknown_name_message(self.kind, key, self._entries))
        return self._entries[key]

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the entry registered as ``name`` (a class or builder) with the given arguments."""
        return self.get(name)(*args, **kwargs)  # type: ignore[operator]

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.strip().lower() in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
