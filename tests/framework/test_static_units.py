"""The pure parts of http_server.static, without sockets: paths, types, validators, ranges."""

import os
import time
from types import SimpleNamespace

import pytest
from http_server import static
from http_server.static import (
    UNSATISFIABLE,
    UnsafePath,
    coalesce,
    content_type_for,
    decode_path,
    decode_segment,
    etag_match,
    evaluate_preconditions,
    if_range_allows,
    is_inside,
    make_etag,
    multipart_body,
    normalize_prefix,
    parse_etags,
    parse_http_date,
    parse_range,
    relative_segments,
    resolve,
    split_target,
)

# --------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/media/a.txt", ("/media/a.txt", "")),
        ("/media/a.txt?x=1&y=/../", ("/media/a.txt", "x=1&y=/../")),
        ("/media/a.txt#frag", ("/media/a.txt", "")),
        ("http://example.com/media/a.txt?q", ("/media/a.txt", "q")),
        ("http://example.com", ("/", "")),
        (b"/media/b.txt", ("/media/b.txt", "")),
    ],
)
def test_split_target(target, expected):
    assert split_target(target) == expected


@pytest.mark.parametrize("target", ["*", "example.com:443", "media/a.txt", "/" + "a" * 9000])
def test_split_target_refuses_non_paths(target):
    with pytest.raises(UnsafePath):
        split_target(target)


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
def test_decode_segment_plain_names(raw, name):
    assert decode_segment(raw) == name


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
        "%",
        "%2",
        "%zz",
        "a%g0",
    ],
)
def test_decode_segment_refuses(raw):
    with pytest.raises(UnsafePath):
        decode_segment(raw)


def test_decode_path():
    assert decode_path("/") == ([], True)
    assert decode_path("/media/") == (["media"], True)
    assert decode_path("/media/a%20b/c.txt") == (["media", "a b", "c.txt"], False)
    for bad in ["media/a", "/media//etc/hostname", "//etc", "/media/a//", "/media/../x"]:
        with pytest.raises(UnsafePath):
            decode_path(bad)
    with pytest.raises(UnsafePath):
        decode_path("/a" * (static.MAX_SEGMENTS + 1))


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


def test_relative_segments():
    assert relative_segments("/media/a/b.txt?x", "/media/") == (["a", "b.txt"], False)
    assert relative_segments("/media/a/", "/media/") == (["a"], True)
    assert relative_segments("/media/", "/media/") == ([], True)
    assert relative_segments("/media", "/media/") == ([], False)
    # The prefix matches whole segments at the start only.
    assert relative_segments("/mediax/a", "/media/") is None
    assert relative_segments("/x/media/a", "/media/") is None
    assert relative_segments("/a/b/c", "/a/b/") == (["c"], False)
    assert relative_segments("/anything", "/") == (["anything"], False)
    # An encoded prefix is the same prefix (the decoded path matched it).
    assert relative_segments("/%6dedia/a", "/media/") == (["a"], False)
    for bad in ["/media//etc/hostname", "/media/%2e%2e/x", "/media%2f..%2fsecret", "/media/..;/x"]:
        with pytest.raises(UnsafePath):
            relative_segments(bad, "/media/")


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
    assert resolve(str(tree), ["a.txt"]) == os.path.join(real_root, "a.txt")
    assert resolve(str(tree), ["sub", "b.txt"]) == os.path.join(real_root, "sub", "b.txt")
    assert resolve(str(tree), []) == real_root
    # A symlink that stays inside the folder is fine.
    assert resolve(str(tree), ["inside.txt"]) == os.path.join(real_root, "sub", "b.txt")
    # Not existing is not resolve's business.
    assert resolve(str(tree), ["nope.txt"]) == os.path.join(real_root, "nope.txt")


@pytest.mark.parametrize(
    "segments",
    [["escape.txt"], ["escape_dir", "secret.txt"], ["abs", "hostname"], [".."], ["sub", ".."],
     [".env"], ["sub", ".hidden"], ["a/b"], ["a\\b"], ["a\x00"]],
)
def test_resolve_refuses(tree, segments):
    with pytest.raises(UnsafePath):
        resolve(str(tree), segments)


def test_resolve_hidden_allowed(tree):
    assert resolve(str(tree), [".env"], allow_hidden=True).endswith("/.env")


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


# --------------------------------------------------------------------------- validators


def _st(mtime_ns=1_700_000_000_123_456_789, size=1234):
    return SimpleNamespace(st_mtime_ns=mtime_ns, st_size=size)


def test_make_etag_is_strong_quoted_and_changes():
    tag = make_etag(_st())
    assert tag.startswith('"') and tag.endswith('"') and not tag.startswith("W/")
    assert make_etag(_st()) == tag
    assert make_etag(_st(size=1235)) != tag
    assert make_etag(_st(mtime_ns=1_700_000_000_123_456_790)) != tag


def test_parse_http_date():
    when = 784111777  # Sun, 06 Nov 1994 08:49:37 GMT
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == when
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == when
    assert parse_http_date("Sun Nov  6 08:49:37 1994") == when
    for bad in [None, "", "yesterday", "Sun, 06 Nov 1994 08:49:37 GMT" * 5, "Sun, 99 Nov 1994"]:
        assert parse_http_date(bad) is None


def test_parse_etags():
    assert parse_etags('"abc"') == [(False, "abc")]
    assert parse_etags('W/"abc"') == [(True, "abc")]
    assert parse_etags('"a", W/"b" ,"c"') == [(False, "a"), (True, "b"), (False, "c")]
    assert parse_etags(' , "a",,') == [(False, "a")]
    assert parse_etags("*") == "*"
    assert parse_etags('"a,b"') == [(False, "a,b")]
    for bad in [None, "", "abc", '"a" "b"', '"a', 'w/"a"', '"a"x', '"a b"']:
        assert parse_etags(bad) is None


def test_etag_match():
    tag = '"1-2"'
    assert etag_match('"1-2"', tag, weak=True)
    assert etag_match('W/"1-2"', tag, weak=True)
    assert etag_match('"x", "1-2"', tag, weak=True)
    assert etag_match("*", tag, weak=True)
    assert not etag_match('"x"', tag, weak=True)
    assert etag_match('"1-2"', tag, weak=False)
    assert not etag_match('W/"1-2"', tag, weak=False)
    assert etag_match(None, tag, weak=True) is None
    assert etag_match("garbage", tag, weak=True) is None


def _headers(**kw):
    names = {k.replace("_", "-").lower(): v for k, v in kw.items()}
    return lambda name: names.get(name.lower())


MTIME = 1_700_000_000
LASTMOD = "Tue, 14 Nov 2023 22:13:20 GMT"  # == MTIME
ETAG = '"abc"'
NOW = MTIME + 1000


def pre(method="GET", **kw):
    return evaluate_preconditions(_headers(**kw), method, ETAG, MTIME, now=NOW)


def test_preconditions_none():
    assert parse_http_date(LASTMOD) == MTIME
    assert pre() is None


def test_if_none_match():
    assert pre(if_none_match=ETAG) == 304
    assert pre("HEAD", if_none_match=ETAG) == 304
    assert pre(if_none_match='W/"abc"') == 304  # weak comparison
    assert pre(if_none_match='"x", "abc"') == 304
    assert pre(if_none_match="*") == 304
    assert pre(if_none_match='"x"') is None
    assert pre(if_none_match="junk") is None
    # If-None-Match wins over If-Modified-Since.
    assert pre(if_none_match='"x"', if_modified_since=LASTMOD) is None


def test_if_modified_since():
    assert pre(if_modified_since=LASTMOD) == 304
    assert pre(if_modified_since="Tue, 14 Nov 2023 22:13:21 GMT") == 304
    assert pre(if_modified_since="Tue, 14 Nov 2023 22:13:19 GMT") is None
    assert pre(if_modified_since="not a date") is None
    # A date in the future is invalid: ignored.
    assert pre(if_modified_since="Fri, 01 Jan 2100 00:00:00 GMT") is None


def test_if_match_and_unmodified_since():
    assert pre(if_match=ETAG) is None
    assert pre(if_match="*") is None
    assert pre(if_match='"x"') == 412
    assert pre(if_match='W/"abc"') == 412  # strong comparison
    assert pre(if_unmodified_since=LASTMOD) is None
    assert pre(if_unmodified_since="Tue, 14 Nov 2023 22:13:19 GMT") == 412
    # If-Match present: If-Unmodified-Since is not looked at.
    assert pre(if_match=ETAG, if_unmodified_since="Tue, 14 Nov 2023 22:13:19 GMT") is None


def test_if_range():
    assert if_range_allows(None, ETAG, MTIME)
    assert if_range_allows(ETAG, ETAG, MTIME)
    assert not if_range_allows('"other"', ETAG, MTIME)
    assert not if_range_allows('W/"abc"', ETAG, MTIME)
    assert if_range_allows(LASTMOD, ETAG, MTIME)
    assert not if_range_allows("Tue, 14 Nov 2023 22:13:21 GMT", ETAG, MTIME)
    assert not if_range_allows("junk", ETAG, MTIME)


# --------------------------------------------------------------------------- ranges


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", [(0, 99)]),
        ("bytes=0-0", [(0, 0)]),
        ("bytes=100-", [(100, 999)]),
        ("bytes=-100", [(900, 999)]),
        ("bytes=-5000", [(0, 999)]),
        ("bytes=500-5000", [(500, 999)]),
        ("bytes=999-999", [(999, 999)]),
        ("Bytes=1-2", [(1, 2)]),
        ("bytes=0-1, 5-6", [(0, 1), (5, 6)]),
        ("bytes=0-1,,5-6,", [(0, 1), (5, 6)]),
        ("bytes=0-1, 2000-3000", [(0, 1)]),  # the unsatisfiable one is dropped
        ("bytes=0-99999999999999999999999", [(0, 999)]),
        (" bytes=1-2 ", [(1, 2)]),
    ],
)
def test_parse_range(header, expected):
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize(
    "header",
    ["bytes=1000-", "bytes=1000-2000", "bytes=-0", "bytes=5000-5001, 6000-",
     "bytes=99999999999999999999999-"],
)
def test_parse_range_unsatisfiable(header):
    assert parse_range(header, 1000) == UNSATISFIABLE


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes",
        "bytes=",
        "bytes=,",
        "bytes=a-b",
        "bytes=5-1",  # last before first: invalid, ignored
        "bytes=+1-2",
        "bytes=1_0-20",
        "bytes=-+5",
        "bytes=1--2",
        "bytes=1-2-3",
        "bytes=\u0661-\u0662",  # Arabic-Indic digits: int() would take them
        "bytes=1 -2",
        "bytes = 1-2",
        "items=0-1",
        "bytes=0-1;x",
        "bytes=" + ",".join(["0-0"] * (static.MAX_RANGES + 1)),
        "bytes=0-" + "1" * 2000,
    ],
)
def test_parse_range_ignored(header):
    assert parse_range(header, 1000) is None


def test_parse_range_empty_file_is_ignored():
    assert parse_range("bytes=0-1", 0) is None
    assert parse_range("bytes=-1", 0) is None


def test_coalesce():
    assert coalesce([(0, 1)]) == [(0, 1)]
    assert coalesce([(5, 6), (0, 1)]) == [(0, 1), (5, 6)]
    assert coalesce([(0, 4), (5, 9)]) == [(0, 9)]  # adjacent
    assert coalesce([(0, 10), (2, 3), (8, 20)]) == [(0, 20)]
    assert coalesce([(0, 100)] * 5) == [(0, 100)]


def test_multipart_body(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(bytes(range(100)))
    with open(f, "rb", buffering=0) as fileobj:
        body = multipart_body(fileobj, [(0, 1), (98, 99)], 100, "application/octet-stream", "BND")
    assert body == (
        b"--BND\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 0-1/100\r\n\r\n"
        b"\x00\x01\r\n"
        b"--BND\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 98-99/100\r\n\r\n"
        b"\x62\x63\r\n--BND--\r\n"
    )


def test_listing_page_escapes(tmp_path):
    (tmp_path / "<b>&x.txt").write_text("x")
    (tmp_path / "dir one").mkdir()
    (tmp_path / ".hidden").write_text("x")
    page = static.listing_page("/media/", str(tmp_path))
    assert "<b>" not in page.replace("<body>", "")
    assert "&lt;b&gt;&amp;x.txt" in page
    assert 'href="%3Cb%3E%26x.txt"' in page
    assert 'href="dir%20one/"' in page
    assert ".hidden" not in page


def test_http_date_format():
    assert static.http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert parse_http_date(static.http_date(time.time())) is not None


def test_multipart_body_file_shorter_than_ranges(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"abc")
    with open(f, "rb", buffering=0) as fileobj, pytest.raises(OSError):
        multipart_body(fileobj, [(0, 0), (2, 9)], 10, "text/plain", "B")
