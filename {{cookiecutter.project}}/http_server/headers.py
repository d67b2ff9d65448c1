"""``Headers``: a case-insensitive mapping of header names to values, for requests and
responses alike, that keeps each name as it was first given."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping, Sequence


class Headers(MutableMapping):
    """A case-insensitive mapping of header names to values that keeps the names as given."""

    __slots__ = ("_values", "_names")

    def __init__(self, items: Iterable[tuple[str, str]] | dict | None = None) -> None:
        self._values: dict[str, str] = {}
        self._names: dict[str, str] = {}
        if items:
            self.update(items)

    @classmethod
    def from_wire(cls, fields: Sequence[tuple[str, str]]) -> Headers:
        """Build from parsed (lower-case name, value) pairs; repeated fields are joined."""
        headers = cls.__new__(cls)
        values = dict(fields)  # one C call, right unless a name repeats
        if len(values) < len(fields):
            values = {}
            for name, value in fields:
                if name in values:
                    values[name] += ("; " if name == "cookie" else ", ") + value
                else:
                    values[name] = value
        headers._values = values
        headers._names = {}
        return headers

    def __getitem__(self, key: str) -> str:
        return self._values[key.lower()]

    def __setitem__(self, key: str, value: str) -> None:
        lower = key.lower()
        self._values[lower] = value
        self._names[lower] = key

    def __delitem__(self, key: str) -> None:
        lower = key.lower()
        del self._values[lower]
        self._names.pop(lower, None)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._values

    def get(self, key: str, default=None):
        return self._values.get(key.lower(), default)

    def has_any(self, lower_names: frozenset[str]) -> bool:
        """Whether any of ``lower_names`` (lower-case) is here: one test for all of them."""
        return not lower_names.isdisjoint(self._values)

    def __iter__(self) -> Iterator[str]:
        names = self._names
        return (names.get(lower, lower) for lower in self._values)

    def __len__(self) -> int:
        return len(self._values)

    def items_for_wire(self) -> Iterator[tuple[str, str]]:
        names = self._names
        for lower, value in self._values.items():
            yield names.get(lower, lower), value

    def __repr__(self) -> str:
        return f"Headers({dict(self.items_for_wire())!r})"

    def wire_lines(self, skip: frozenset[str]) -> bytes:
        """``Name: value\r\n`` for each field but those in ``skip`` (lower-case names).

        Latin-1 where the value allows it (HTTP's historical charset), UTF-8 otherwise.
        """
        names = self._names
        text = ""  # a loop, not a comprehension: that would be one more call (Python 3.11)
        for lower, value in self._values.items():
            if lower not in skip:
                text += f"{names.get(lower, lower)}: {value}\r\n"
        if text.isascii():  # the usual case: all the lines encoded at once
            return text.encode("ascii")
        return b"".join([f"{names.get(lower, lower)}: {value}\r\n".encode(_encoding(value))
                         for lower, value in self._values.items() if lower not in skip])


def _encoding(value: str) -> str:
    return "latin-1" if value.isascii() or max(value) <= "\xff" else "utf-8"
