"""The pure parts of http_server.static and its media types, without sockets: which file a
path names, which it refuses, its type, its entity tag, the listing page."""

import os
from types import SimpleNamespace

import pytest
from http_server import static
from http_server.mediatypes import content_type_for
from http_server.request import Requests
from http_server.static import (
    StaticFiles,
    UnsafePath,
    check_segment,
    is_inside,
    listing_page,
    make_etag,
    normalize_prefix,
    resolve,
    segments_below,
)

# --------------------------------------------------------------------------- paths


def segments(target: str) -> list[str]:
    return Requests("GET", target).path_segments


def below(target: str, prefix: str = "/media/") -> tuple[list[str], bool]:
    """The segments below ``prefix`` that serve() would take from a request for ``target``."""
    return segments_below(normalize_prefix(prefix).strip("/").split("/") if prefix.strip("/")
                          else [], segments(target))


def refuse(target: str, prefix: str = "/media/") -> None:
    """What serve() checks before it touches the disk; raises UnsafePath to refuse."""
    rest, _ = below(target, prefix)
    for name in rest:
        check_segment(name)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/media/a.txt", ["media", "a.txt"]),
        ("/media/a.txt?x=1&y=/../", ["media", "a.txt"]),
        ("/", [""]),
        ("/media/", ["media", ""]),
        ("/a%2Fb/", ["a/b", ""]),  # an encoded slash stays inside its segment
    ],
)
def test_path_segments_split_the_path_without_the_query(target, expected):
    assert segments(target) == expected


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("a.txt", "a.txt"),
        ("hello%20world.txt", "hello world.txt"),
        ("caf%C3%A9.txt", "café.txt"),
        ("%252e%252e", "%2e%2e"),  # decoded once only: a literal name, never a dot segment
        ("100%25.txt", "100%.txt"),
        ("a;b", "a;b"),
        ("...", "..."),
        ("%FF", "\udcff"),  # not UTF-8: kept as the surrogate os uses for that byte
        ("café.txt", "café.txt"),  # unencoded (an in-process caller): UTF-8
    ],
)
def test_path_segments_decode_each_segment_once(raw, name):
    assert segments("/" + raw) == [name]
    check_segment(name, allow_hidden=True)  # a plain name to the mount ("..." is only hidden)


@pytest.mark.parametrize(
    "raw",
    [
        "..",
        ".",
        "%2e%2e",
        "%2E%2E",
        ".%2e",
        "%2e.",
        "%2e",
        "..;",
        "..;jsessionid=1",
        ".;x",
        "%2e%2e;",
        "a%2fb",
        "a%2Fb",
        "%2f",
        "a%5cb",
        "%5C..",
        "a\\b",
        "..\\",
        "a%00.txt",
        "%00",
        "a%0a",
        "a%0d%0a",
        "%7f",
        "",
    ],
)
def test_segments_that_are_not_plain_names_are_refused(raw):
    with pytest.raises(UnsafePath):
        refuse(f"/media/{raw}/x.txt")


def test_segments_below_the_root_mount():
    assert below("/", "/") == ([], True)
    assert below("/media/", "/") == (["media"], True)
    assert below("/media/a%20b/c.txt", "/") == (["media", "a b", "c.txt"], False)
    for bad in ["/media//etc/hostname", "//etc", "/media/a//", "/media/../x"]:
        with pytest.raises(UnsafePath):
            refuse(bad, "/")
    with pytest.raises(UnsafePath):
        below("/a" * (static.MAX_SEGMENTS + 1), "/")


@pytest.mark.parametrize(
    ("prefix", "normal"),
    [("/media/", "/media/"), ("/media", "/media/"), ("media", "/media/"), ("/", "/"), ("", "/"),
     ("/a/b/", "/a/b/")],
)
def test_normalize_prefix(prefix, normal):
    assert normalize_prefix(prefix) == normal


@pytest.mark.parametrize("prefix", ["/a//b/", "/../", "/a/./b", "/a%2fb/", "/a\\b/"])
def test_normalize_prefix_refuses(prefix):
    with pytest.raises(ValueError):
        normalize_prefix(prefix)


def test_segments_below_a_prefix():
    assert below("/media/a/b.txt?x") == (["a", "b.txt"], False)
    assert below("/media/a/") == (["a"], True)
    assert below("/media/") == ([], True)
    assert below("/media") == ([], False)
    # The prefix matches whole segments at the start only.
    mount = StaticFiles("/media/", "/nonexistent")
    for outside in ["/mediax/a", "/x/media/a"]:
        assert not mount.matches(outside)
        with pytest.raises(UnsafePath):
            below(outside)
    assert below("/a/b/c", "/a/b/") == (["c"], False)
    assert below("/anything", "/") == (["anything"], False)
    # An encoded prefix is the same prefix (the decoded path matched it).
    assert below("/%6dedia/a") == (["a"], False)
    for bad in ["/media//etc/hostname", "/media/%2e%2e/x", "/media%2f..%2fsecret", "/media/..;/x"]:
        with pytest.raises(UnsafePath):
            refuse(bad)


def test_is_inside():
    assert is_inside("/srv/media", "/srv/media")
    assert is_inside("/srv/media", "/srv/media/a/b")
    assert not is_inside("/srv/media", "/srv/media2/a")
    assert not is_inside("/srv/media", "/srv")
    assert not is_inside("/srv/media", "/etc/passwd")
    assert is_inside("/", "/etc/passwd")


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "media"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "sub" / "b.txt").write_text("b")
    (root / ".env").write_text("SECRET=1")
    (tmp_path / "secret.txt").write_text("secret")
    (root / "escape.txt").symlink_to(tmp_path / "secret.txt")
    (root / "escape_dir").symlink_to(tmp_path)
    (root / "inside.txt").symlink_to(root / "sub" / "b.txt")
    (root / "abs").symlink_to("/etc")
    return root


def test_resolve_inside(tree):
    real_root = os.path.realpath(tree)
    assert resolve(real_root, ["a.txt"]) == os.path.join(real_root, "a.txt")
    assert resolve(real_root, ["sub", "b.txt"]) == os.path.join(real_root, "sub", "b.txt")
    assert resolve(real_root, []) == real_root
    # A symlink that stays inside the folder is fine.
    assert resolve(real_root, ["inside.txt"]) == os.path.join(real_root, "sub", "b.txt")
    # Not existing is not resolve's business.
    assert resolve(real_root, ["nope.txt"]) == os.path.join(real_root, "nope.txt")


@pytest.mark.parametrize(
    "names",
    [["escape.txt"], ["escape_dir", "secret.txt"], ["abs", "hostname"], [".."], ["sub", ".."],
     [".env"], ["sub", ".hidden"], ["a/b"], ["a\\b"], ["a\x00"]],
)
def test_resolve_refuses(tree, names):
    with pytest.raises(UnsafePath):
        resolve(os.path.realpath(tree), names)


def test_resolve_hidden_allowed(tree):
    assert resolve(os.path.realpath(tree), [".env"], allow_hidden=True).endswith("/.env")


def test_the_real_root_is_what_realpath_says_whatever_changes_in_between(tmp_path):
    """The kernel's name of the opened root, found again each time: a switched release
    symlink, an ancestor moved behind a symlink, a missing root."""
    (tmp_path / "v1" / "static").mkdir(parents=True)
    (tmp_path / "v2" / "static").mkdir(parents=True)
    (tmp_path / "current").symlink_to(tmp_path / "v1")
    mount = StaticFiles("/m/", str(tmp_path / "current" / "static"))
    assert mount.real_root() == os.path.realpath(tmp_path / "v1" / "static")
    (tmp_path / "next").symlink_to(tmp_path / "v2")
    os.replace(tmp_path / "next", tmp_path / "current")
    assert mount.real_root() == os.path.realpath(tmp_path / "v2" / "static")
    # The same directory, now under another name: its new real path.
    os.rename(tmp_path / "v2", tmp_path / "v2-moved")
    (tmp_path / "v2").symlink_to(tmp_path / "v2-moved")
    assert mount.real_root() == os.path.realpath(tmp_path / "v2-moved" / "static")
    plain = StaticFiles("/m/", str(tmp_path / "v1" / "static"))
    assert plain.real_root() == os.path.realpath(tmp_path / "v1" / "static")
    missing = StaticFiles("/m/", str(tmp_path / "nowhere"))
    assert missing.real_root() == os.path.realpath(tmp_path / "nowhere")


def test_cache_control_with_a_control_character_is_refused():
    with pytest.raises(ValueError):
        StaticFiles("/media/", "/nonexistent", cache_control="public\r\nX-Evil: 1")


# --------------------------------------------------------------------------- content types


@pytest.mark.parametrize(
    ("name", "ctype"),
    [
        ("index.html", "text/html; charset=utf-8"),
        ("a.HTML", "text/html; charset=utf-8"),
        ("a.txt", "text/plain; charset=utf-8"),
        ("a.css", "text/css; charset=utf-8"),
        ("a.js", "text/javascript; charset=utf-8"),
        ("a.json", "application/json; charset=utf-8"),
        ("a.svg", "image/svg+xml; charset=utf-8"),
        ("a.png", "image/png"),
        ("a.jpg", "image/jpeg"),
        ("a.webp", "image/webp"),
        ("a.woff2", "font/woff2"),
        ("a.pdf", "application/pdf"),
        ("a.tar.gz", "application/gzip"),
        ("a.mp4", "video/mp4"),
        ("a.unknownext", "application/octet-stream"),
        ("noext", "application/octet-stream"),
        (".bashrc", "application/octet-stream"),
    ],
)
def test_content_type_for(name, ctype):
    assert content_type_for(name) == ctype


# --------------------------------------------------------------------------- entity tag


def _st(mtime_ns=1_700_000_000_123_456_789, size=1234):
    return SimpleNamespace(st_mtime_ns=mtime_ns, st_size=size)


def test_make_etag_is_strong_quoted_and_changes():
    tag = make_etag(_st())
    assert tag.startswith('"') and tag.endswith('"') and not tag.startswith("W/")
    assert make_etag(_st()) == tag
    assert make_etag(_st(size=1235)) != tag
    assert make_etag(_st(mtime_ns=1_700_000_000_123_456_790)) != tag



def test_listing_page_escapes(tmp_path):
    (tmp_path / "<b>&x.txt").write_text("x")
    (tmp_path / "dir one").mkdir()
    (tmp_path / ".hidden").write_text("x")
    root = os.path.realpath(tmp_path)
    page = listing_page("/media/", root, root)
    assert "<b>" not in page.replace("<body>", "")
    assert "&lt;b&gt;&amp;x.txt" in page
    assert 'href="%3Cb%3E%26x.txt"' in page
    assert 'href="dir%20one/"' in page
    assert ".hidden" not in page
