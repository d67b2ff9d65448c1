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


_QUANTIFIERS = frozenset("*+?{")


def _literal_segments(pattern: str) -> list[str]:
    """The whole segments every path ``pattern`` matches begins with, as far as the pattern
    spells them out: ``^/api/v1/users/(?P<id>[0-9]+)$`` gives ``["api", "v1", "users"]``,
    ``^/health$`` ``["health"]``, and ``^/$`` or ``^/users?/x`` nothing."""
    body = pattern.removeprefix("^")
    if not body.startswith("/") or "|" in pattern:  # an alternative may start elsewhere
        return []
    segments: list[str] = []
    segment: list[str] = []
    i, end = 1, len(body)
    while i < end:
        char = body[i]
        if char == "\\":
            escaped = body[i + 1:i + 2]
            if escaped == "Z" and i + 2 == end:
                break
            if not escaped or escaped.isalnum():  # \d, \w, \b, \1: not one literal character
                return segments
            char, width = escaped, 2
        elif char == "$" and i + 1 == end:
            break
        elif char in _METACHARACTERS:
            return segments
        else:
            width = 1
        if body[i + width:i + width + 1] in _QUANTIFIERS and i + width < end:
            return segments  # the character may repeat or be missing
        if char == "/":
            segments.append("".join(segment))
            segment = []
        else:
            segment.append(char)
        i += width
    else:
        return segments  # a prefix: "^/users" also matches "/usersX"
    segments.append("".join(segment))  # the pattern ends there: its last segment is whole
    return segments


class _Node:
    """Where the routes that spell out the same first segments meet (``Router.tree``)."""

    __slots__ = ("children", "candidates")

    def __init__(self, candidates: list[Path]):
        self.children: dict[str, _Node] = {}
        # The routes a path reaching this node may match, in the order they are tried:
        # those placed here or on the way here.
        self.candidates = candidates


# A router with more routes than this finds a path's candidates in a tree of their
# first segments; with fewer, trying each route costs less than walking the tree.
ROUTES_BEFORE_TREE = 8


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
        self.routes: list[Path] = []  # in the order they are tried; add() adds
        self.named: dict[str, Path] = {}
        # path -> method -> the route that answers it, for the paths routes spell out
        # (``^/health$``): the usual request finds its route without a regex.
        self.known: dict[str, dict[str, Path]] = {}
        # With more than ROUTES_BEFORE_TREE routes, a tree of the segments they spell out
        # (``_literal_segments``): a path is tried against the routes its first segments
        # lead to, not against every route. Built at the first match after a change.
        self.tree: _Node | None = None
        for route in routes:
            self.add(route)
        _ROUTERS[:] = [weakref.ref(self), *(ref for ref in _ROUTERS if ref() is not None)]

    def add(self, route: Path) -> None:
        # Tried after every route before it: what ``known`` says stays true.
        self.routes.append(route)
        if route.name:
            self.named[route.name] = route
        self.tree = None

    def _grow_tree(self) -> _Node:
        root = _Node([])
        for route in self.routes:
            node = root
            for segment in _literal_segments(route.pattern):
                child = node.children.get(segment)
                if child is None:
                    child = node.children[segment] = _Node(list(node.candidates))
                node = child
            _add_below(node, route)
        self.tree = root
        return root

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
        routes = self.routes
        if len(routes) > ROUTES_BEFORE_TREE:
            node = self.tree or self._grow_tree()
            for segment in path.split("/")[1:]:
                child = node.children.get(segment)
                if child is None:
                    break
                node = child
            routes = node.candidates
        for route in routes:
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


def _add_below(node: _Node, route: Path) -> None:
    """``route`` is a candidate at ``node`` and at every node below it (added in the order
    of the routes: each candidate list stays in that order)."""
    node.candidates.append(route)
    for child in node.children.values():
        _add_below(child, route)
