"""Routes: ``Path`` (the seed's name), the ``Router`` matching them, ``Redirect``, ``reverse``."""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterable

from .response import check_header

# The routers in use, newest first, for the module-level reverse() (Django-style): the
# names are those of routes a server serves, not of every Path ever made.
_ROUTERS: list[weakref.ref] = []

_GROUP = re.compile(r"\(\?P<(\w+)>((?:[^()\\]|\\.|\((?!\?P<)(?:[^()\\]|\\.)*\))*)\)")
# An escaped character that stands for itself (`\.`, `\-`). An escaped letter or digit is
# a class (`\d`), an anchor (`\b`) or a back-reference (`\1`), never a literal.
_ESCAPED = re.compile(r"\\([^0-9A-Za-z])")
_METACHARACTERS = set(".^$*+?{}[]|()\\")
# A path with a control character matches no route: Python's "$" also matches before a
# final "\n", so "^/admin$" would take "/admin\n" (the parser refuses these on the wire;
# this holds for requests built in-process too, whatever the pattern).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NO_METHODS: frozenset[str] = frozenset()


class Path:
    """``Path(regex, view, name=None, methods=None)``: ``regex`` is matched against the path."""

    __slots__ = ("pattern", "regex", "view", "name", "methods", "literal")

    def __init__(self, pattern: str, view: Callable, name: str | None = None,
                 methods: Iterable[str] | None = None) -> None:
        self.pattern = pattern
        self.regex = re.compile(pattern)
        self.view = view
        self.name = name
        self.methods = None
        if methods is not None:
            allowed = {m.upper() for m in methods}
            if "GET" in allowed:
                allowed.add("HEAD")
            self.methods = frozenset(allowed)
        self.literal = _literal_path(pattern)  # the one path it matches, if it is plain text

    def reverse(self, **kwargs) -> str:
        """Fill the named groups in with ``kwargs``; each value must match its group."""
        pattern = self.pattern
        missing = set(self.regex.groupindex) - set(kwargs)
        if missing:
            raise ValueError(f"reverse({self.name!r}) needs {', '.join(sorted(missing))}")

        def fill(match: re.Match) -> str:
            name, group_pattern = match.group(1), match.group(2)
            value = str(kwargs[name])
            if re.fullmatch(group_pattern, value) is None:
                raise ValueError(f"{value!r} does not match the {name!r} group of {self.name!r}")
            filled.append(value)
            return f"\x00{len(filled) - 1}\x00"  # a placeholder, so values are never unescaped

        filled: list[str] = []
        # With its groups filled in, the rest of the pattern must be plain text.
        path = _literal_path(_GROUP.sub(fill, pattern))
        if path is None:
            raise ValueError(f"route {self.name!r} ({self.pattern!r}) cannot be reversed")
        return re.sub("\x00([0-9]+)\x00", lambda m: filled[int(m.group(1))], path)

    def __repr__(self) -> str:
        view = getattr(self.view, "__name__", self.view)
        return f"Path({self.pattern!r}, {view!r}, name={self.name!r})"


def _literal_path(pattern: str) -> str | None:
    """The path ``pattern`` spells out when it is plain text between its anchors
    (``^/health$``, ``^/users\\Z``), else None."""
    body = pattern.removeprefix("^").removesuffix("$").removesuffix("\\Z")
    if any(c in _METACHARACTERS for c in _ESCAPED.sub("", body)):
        return None
    return _ESCAPED.sub(lambda m: m.group(1), body)


# The methods a route lookup is remembered for: clients choose the method, and any other
# token would let them grow the table without bound.
_REMEMBERED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def reverse(name: str, /, **kwargs) -> str:
    """The path of the route called ``name``, with its groups filled in from ``kwargs``."""
    for ref in list(_ROUTERS):
        router = ref()
        if router is not None and name in router.named:
            return router.reverse(name, **kwargs)
    raise LookupError(f"no route is named {name!r}")


class Redirect:
    """Return ``Redirect(to)`` from a view or middleware to send the client elsewhere."""

    __slots__ = ("to", "status")

    def __init__(self, to: str, status: int = 302) -> None:
        check_header("Location", to)  # a CR or LF here would split the response
        if not 300 <= status <= 399:
            raise ValueError(f"a redirect status is 3xx, not {status}")
        self.to = to
        self.status = status

    def apply(self, response) -> None:
        response.headers["Location"] = self.to
        response.send(b"", self.status, None)


class Router:
    """Finds the first route whose regex matches the path and allows the method."""

    def __init__(self, routes: Iterable[Path] = ()) -> None:
        self.routes: list[Path] = list(routes)  # in the order they are tried; add() adds
        self.named = {route.name: route for route in self.routes if route.name}
        # path -> method -> the route that answers it, for the paths routes spell out
        # (``^/health$``): the usual request finds its route without a regex.
        self.known: dict[str, dict[str, Path]] = {}
        _ROUTERS[:] = [weakref.ref(self), *(ref for ref in _ROUTERS if ref() is not None)]

    def add(self, route: Path) -> None:
        # Tried after every route before it: what ``known`` says stays true.
        self.routes.append(route)
        if route.name:
            self.named[route.name] = route

    def match(self, method: str, path: str):
        """``(route, kwargs)`` for the first match; ``(None, allowed)`` if only the method is wrong.

        ``allowed`` is the set of methods the matching routes accept (empty: no route matched).
        """
        known = self.known.get(path)
        if known is not None and method in known:
            return known[method], {}
        allowed = _NO_METHODS  # a set is built only when a route refuses the method
        if not path.isprintable() and _CONTROL.search(path) is not None:
            return None, set()
        for route in self.routes:
            match = route.regex.match(path)
            if match is None:
                continue
            methods = route.methods
            if methods is None or method in methods:
                found = match.groupdict()
                if path == route.literal and not found and method in _REMEMBERED_METHODS:
                    self.known.setdefault(path, {})[method] = route
                return route, found
            allowed |= methods
        return None, set(allowed)

    def reverse(self, name: str, /, **kwargs) -> str:
        try:
            route = self.named[name]
        except KeyError:
            raise LookupError(f"no route is named {name!r}") from None
        return route.reverse(**kwargs)
