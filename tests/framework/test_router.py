"""Routing on its own (http_server.url), without a socket or a server: ``Router.match``,
``Path.reverse``, the module-level ``reverse`` and ``Redirect``.

test_api.py checks the same rules end to end, through a live server.
"""

from __future__ import annotations

import gc

import pytest
from http_server import url
from http_server.response import Response
from http_server.url import Path, Redirect, Router, reverse


def view(request, response):
    response.send("view")


def other(request, response):
    response.send("other")


# ======================================================================= match


def test_the_first_matching_route_wins():
    first, second = Path(r"^/first", view), Path(r"^/first$", other)
    router = Router([first, second])
    assert router.match("GET", "/first") == (first, {})
    assert router.match("GET", "/firstly") == (first, {})  # the regex is matched at the start


def test_a_later_route_matches_what_an_earlier_one_does_not():
    first, second = Path(r"^/first$", view), Path(r"^/first", other)
    assert Router([first, second]).match("GET", "/firstly") == (second, {})


def test_named_groups_are_the_view_keyword_arguments():
    route = Path(r"^/articles/(?P<year>[0-9]{4})/(?P<slug>[-a-z]+)$", view)
    router = Router([route])
    assert router.match("GET", "/articles/1999/some-slug") == (
        route, {"year": "1999", "slug": "some-slug"})
    assert router.match("GET", "/articles/99/some-slug") == (None, set())


def test_no_route_matching_gives_none_and_no_allowed_method():
    assert Router([Path(r"^/a$", view)]).match("GET", "/b") == (None, set())
    assert Router().match("GET", "/") == (None, set())


def test_a_route_without_methods_takes_every_method():
    route = Path(r"^/any$", view)
    router = Router([route])
    for method in ("GET", "HEAD", "POST", "DELETE", "M-SEARCH"):
        assert router.match(method, "/any") == (route, {})


def test_methods_are_upper_cased_and_get_brings_head():
    get_only = Path(r"^/g$", view, methods=["get"])
    post_only = Path(r"^/p$", view, methods=["post"])
    assert get_only.methods == {"GET", "HEAD"}
    assert post_only.methods == {"POST"}  # HEAD comes with GET only
    router = Router([get_only, post_only])
    assert router.match("HEAD", "/g") == (get_only, {})
    assert router.match("HEAD", "/p") == (None, {"POST"})


def test_wrong_method_gives_the_methods_of_every_matching_route():
    reader = Path(r"^/r$", view, methods=["GET"])
    writer = Path(r"^/r$", other, methods=["PUT"])
    router = Router([reader, writer, Path(r"^/elsewhere$", view, methods=["PATCH"])])
    assert router.match("DELETE", "/r") == (None, {"GET", "HEAD", "PUT"})
    assert router.match("PUT", "/r") == (writer, {})  # past a route refusing the method


@pytest.mark.parametrize("path", ["/admin\n", "/admin\r", "/ad\x00min", "/admin\x7f", "/\x1b"])
def test_a_path_with_a_control_character_matches_nothing(path):
    # "$" also matches before a final "\n": without the check, "/admin\n" would be /admin.
    router = Router([Path(r"^/admin$", view), Path(r"^/", other)])
    assert router.match("GET", path) == (None, set())


def test_add_appends_a_route_after_the_others_and_names_it():
    catch_all = Path(r"^/", view)
    router = Router([catch_all])
    added = Path(r"^/added$", other, name="router-test-added")
    router.add(added)
    assert router.match("GET", "/added") == (catch_all, {})
    assert router.named["router-test-added"] is added
    assert router.reverse("router-test-added") == "/added"


def test_a_remembered_route_is_the_one_the_scan_found():
    """A path a route spells out is remembered with its method after the first lookup; the
    second lookup answers the same, also where an earlier regex route took the path, and
    per method."""
    catch = Path(r"^/ab?c$", other, methods=["POST"])  # a regex that also matches /ac
    plain = Path(r"^/ac$", view)
    router = Router([catch, plain])
    for _ in range(2):
        assert router.match("POST", "/ac") == (catch, {})
        assert router.match("GET", "/ac") == (plain, {})
    assert router.known == {"/ac": {"GET": plain}}  # catch spells out no path


def test_only_the_paths_and_methods_routes_spell_out_are_remembered():
    """Clients choose paths and methods: a wildcard route's paths and an unknown method are
    answered by the scan every time, so the table cannot grow without bound."""
    router = Router([Path(r"^/files/.*$", view), Path(r"^/$", other)])
    assert router.match("GET", "/files/a") == (router.routes[0], {})
    assert router.match("BREW", "/") == (router.routes[1], {})
    assert router.match("GET", "/missing") == (None, set())
    assert router.known == {}
    assert router.match("GET", "/") == (router.routes[1], {})
    assert router.known == {"/": {"GET": router.routes[1]}}


@pytest.mark.parametrize("pattern, literal", [
    (r"^/health$", "/health"), (r"^/a\.b\Z", "/a.b"), (r"/plain", "/plain"),
    (r"^/a.b$", None), (r"^/(?P<id>[0-9]+)$", None), (r"^/x\$", None), (r"(?i)^/x$", None),
    (r"^/a\d$", None), (r"^/a\b$", None),
])
def test_a_route_knows_the_one_path_it_spells_out(pattern, literal):
    assert Path(pattern, view).literal == literal


# ==================================================================== route tree

# Patterns of every shape the tree must read right: the whole segments each spells out
# (none: the route is tried for every path).
INDEXED = [
    (r"^/$", [""]),
    (r"^/users/(?P<id>[0-9]+)$", ["users"]),
    (r"^/users$", ["users"]),
    (r"^/hello\Z", ["hello"]),
    (r"/plain/(?P<x>\w+)", ["plain"]),  # match() anchors at the start anyway
    (r"^/a\.b/c$", ["a.b", "c"]),
    (r"^/api/v1/items$", ["api", "v1", "items"]),
    (r"^/café/", ["café"]),
    (r"^/users?/x$", []),  # the "s" may be missing
    (r"^/ab*c/", []),
    (r"^/a{2}/", []),
    (r"^/a/?$", []),  # the slash may be missing
    (r"^/a?/", []),
    (r"^/a\d/x$", []),  # \d is a class, not the letter d
    (r"^/files/(a|b)$", []),  # an alternative: read as starting anywhere
    (r"^/x|^/y/", []),
    (r"^/x/a|^/z/", []),  # "/z/" matches: the first segment is not always "x"
    (r"^/a/*x$", []),  # "/ax" matches: the slash may be missing
    (r"^/(?P<any>[^/]+)/tail$", []),
    (r"^/api/v1/(?P<id>[0-9]+)/more$", ["api", "v1"]),
    (r"^/api/v1/ite(?P<rest>.*)$", ["api", "v1"]),  # "ite" is not a whole segment
    (r"^/api/v2/", ["api", "v2"]),
    (r"^/users(?:/|$)", []),
    (r"^/users", []),  # a prefix: also "/usersX"
    (r"(?i)^/case/", []),
    (r"^.*$", []),
    (r"^/end\\", []),  # an escaped backslash, then the end of the pattern: a prefix
]
PATHS = ["/", "/users", "/users/1", "/user/x", "/users/x", "/usersX", "/users/", "/hello",
         "/plain/q", "/a.b/c", "/axb/c", "/api/v1/items", "/api/v2/items", "/café/x",
         "/aa/", "/a", "/a/", "/ac/", "/abbbc/", "/a1/x", "/ad/x", "/files/a", "/x", "/y/",
         "/q/tail", "/CASE/", "/x/a", "/z/", "/ax", "/end\\", "", "*", "xusers/1", "//users/1",
         "/api/v1/7/more", "/api/v1/items/x", "/api/v1/itemsx", "/api/v2/x", "/api/v3/x"]


@pytest.mark.parametrize("pattern,segments", INDEXED)
def test_the_segments_a_route_spells_out(pattern, segments):
    assert url._literal_segments(pattern) == segments


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_the_tree_finds_what_trying_every_route_in_order_finds(method):
    """The tree may only leave out routes that cannot match: for every path, the answer
    is that of trying each route in its order, the plain way."""
    routes = [Path(pattern, view, methods=["POST"] if i % 3 == 1 else None)
              for i, (pattern, _) in enumerate(INDEXED)]
    assert len(routes) > url.ROUTES_BEFORE_TREE
    router = Router(routes)
    late = Router(routes[:5])
    for route in routes[5:]:  # added one by one, with requests in between
        late.match(method, "/users/1")
        late.add(route)
    for path in PATHS:
        expected_allowed = set()
        expected = (None, expected_allowed)
        for route in routes:
            found = route.regex.match(path)
            if found is None:
                continue
            if route.methods is None or method in route.methods:
                expected = (route, found.groupdict())
                break
            expected_allowed |= route.methods
        for each in (router, late):
            assert each.match(method, path) == expected, (path, method)
            assert each.match(method, path) == expected, (path, method)  # remembered too
    assert router.tree is not None


def test_many_routes_are_not_all_tried():
    routes = [Path(rf"^/api/thing{i}/(?P<id>[0-9]+)$", view) for i in range(30)]
    router = Router(routes)
    assert router.match("GET", "/api/thing29/7") == (routes[29], {"id": "7"})
    assert router.tree.children["api"].children["thing29"].candidates == [routes[29]]
    catch_all = Path(r"^/(?P<rest>.*)$", other)
    router.add(catch_all)  # tried for every path, after the routes before it
    assert router.match("GET", "/api/thing3/x") == (catch_all, {"rest": "api/thing3/x"})
    assert router.tree.children["api"].children["thing3"].candidates == [routes[3], catch_all]


# ======================================================================= reverse


@pytest.mark.parametrize("pattern", [r"^/a\d$", r"^/v\w+$", r"^/(a)\1$"])
def test_reverse_refuses_an_escaped_letter_or_digit(pattern):
    """``\\d`` is a class, not the letter d: no single path spells the route out."""
    with pytest.raises(ValueError, match="cannot be reversed"):
        Path(pattern, view, name="escaped").reverse()


def test_reverse_fills_the_named_groups_in():
    route = Path(r"^/articles/(?P<year>[0-9]{4})/(?P<slug>[-a-z]+)$", view, name="article")
    assert route.reverse(year=2024, slug="hello-world") == "/articles/2024/hello-world"
    assert route.reverse(year="1999", slug="x") == "/articles/1999/x"


def test_reverse_of_a_group_with_parentheses_inside():
    route = Path(r"^/tags/(?P<tag>(?:ab)+)/(?P<n>\d+)$", view, name="tags")
    assert route.reverse(tag="abab", n=7) == "/tags/abab/7"


@pytest.mark.parametrize(
    ("pattern", "kwargs", "path"),
    [(r"^/files/report\.txt$", {}, "/files/report.txt"),
     (r"^/a\-b/(?P<id>\d+)$", {"id": 3}, "/a-b/3"),
     (r"^/plus\+/(?P<id>\d+)\Z", {"id": 4}, "/plus+/4"),
     (r"^/$", {}, "/"),
     (r"/no-anchors", {}, "/no-anchors")],
    ids=["escaped-dot", "escaped-dash", "escaped-plus-and-end-of-string", "root", "no-anchors"],
)
def test_reverse_unescapes_literals(pattern, kwargs, path):
    assert Path(pattern, view, name="literal").reverse(**kwargs) == path


def test_reverse_never_unescapes_a_value():
    route = Path(r"^/q/(?P<q>.+)$", view, name="query")
    assert route.reverse(q=r"a\.b") == r"/q/a\.b"


def test_reverse_without_a_group_value_names_the_missing_ones():
    route = Path(r"^/(?P<year>\d{4})/(?P<slug>[a-z]+)/(?P<page>\d+)$", view, name="page")
    with pytest.raises(ValueError, match=r"reverse\('page'\) needs page, slug$"):
        route.reverse(year=2024)


@pytest.mark.parametrize("value", ["abcd", "20245", "", "2024/x"])
def test_reverse_refuses_a_value_its_group_does_not_match(value):
    route = Path(r"^/(?P<year>[0-9]{4})$", view, name="year")
    with pytest.raises(ValueError, match="does not match the 'year' group of 'year'"):
        route.reverse(year=value)


@pytest.mark.parametrize("pattern", [r"^/items/\d+$", r"^/a|/b$", r"^/colou?r$", r"^/x.y$",
                                     r"^/(a)$"])
def test_a_pattern_with_metacharacters_outside_named_groups_cannot_be_reversed(pattern):
    with pytest.raises(ValueError, match="cannot be reversed"):
        Path(pattern, view, name="wild").reverse()


def test_router_reverse_of_an_unknown_name():
    router = Router([Path(r"^/known$", view, name="router-test-known")])
    assert router.reverse("router-test-known") == "/known"
    with pytest.raises(LookupError, match="no route is named 'router-test-unknown'"):
        router.reverse("router-test-unknown")


# ============================================================ module-level reverse


def test_module_reverse_finds_a_route_of_a_router_in_use():
    router = Router([Path(r"^/in-use/(?P<n>\d+)$", view, name="router-test-in-use")])
    assert reverse("router-test-in-use", n=5) == "/in-use/5"
    assert router.reverse("router-test-in-use", n=5) == "/in-use/5"


def test_module_reverse_ignores_a_path_no_router_holds():
    Path(r"^/loose$", view, name="router-test-loose")
    with pytest.raises(LookupError, match="no route is named 'router-test-loose'"):
        reverse("router-test-loose")


def test_module_reverse_looks_in_the_newest_router_first():
    older = Router([Path(r"^/older$", view, name="router-test-twice")])
    assert reverse("router-test-twice") == "/older"
    newer = Router([Path(r"^/newer$", view, name="router-test-twice")])
    assert reverse("router-test-twice") == "/newer"
    assert older.reverse("router-test-twice") == "/older"  # each router keeps its own
    assert newer.reverse("router-test-twice") == "/newer"


def test_module_reverse_forgets_a_router_nobody_uses_any_more():
    kept = Router([Path(r"^/kept$", view, name="router-test-gone")])
    dropped = Router([Path(r"^/dropped$", view, name="router-test-gone")])
    assert reverse("router-test-gone") == "/dropped"
    del dropped
    gc.collect()
    assert reverse("router-test-gone") == "/kept"
    del kept
    gc.collect()
    with pytest.raises(LookupError):
        reverse("router-test-gone")


# ======================================================================= Redirect


def test_redirect_sets_location_and_an_empty_body():
    response = Response()
    Redirect("/elsewhere?a=1").apply(response)
    assert response.status == 302
    assert response.headers["Location"] == "/elsewhere?a=1"
    assert response.body == b""


@pytest.mark.parametrize("status", [300, 301, 303, 307, 308, 399])
def test_redirect_takes_any_3xx_status(status):
    response = Response()
    Redirect("/x", status).apply(response)
    assert response.status == status


@pytest.mark.parametrize("status", [200, 299, 400, 404])
def test_redirect_refuses_a_status_that_is_not_3xx(status):
    with pytest.raises(ValueError, match=f"a redirect status is 3xx, not {status}"):
        Redirect("/x", status)


@pytest.mark.parametrize("to", ["/x\r\nSet-Cookie: a=1", "/x\nX: y", "/x\r", "/x\x00"])
def test_redirect_refuses_a_location_that_would_split_the_response(to):
    with pytest.raises(ValueError, match="Location"):
        Redirect(to)
