"""The multipart/form-data parser (http_server.multipart) and what a view gets from it
(http_server.formdata), tested without sockets.

Every body, valid or not, goes through ``parse()``: fed whole, one byte at a time and
at a few seeded random splits, and every way of cutting it must give the same form
or the same one-line refusal (the shape of test_parser.py). A hypothesis search then
cuts mutated bodies anywhere, with small limits so that every limit is crossed.
"""

from __future__ import annotations

import io
import tempfile
import tracemalloc
from itertools import pairwise

import pytest
from http_server.formdata import MultiDict, UploadedFile, parse_form
from http_server.headers import Headers
from http_server.multipart import (
    MAX_EPILOGUE,
    MAX_PADDING,
    MAX_PREAMBLE,
    FormEnd,
    FormLimits,
    MultipartError,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    boundary_of,
    safe_filename,
)
from http_server.request import Requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.splits import splits

BOUNDARY = b"xyz"
A = 'form-data; name="a"'  # the Content-Disposition of a plain field


def part(disposition: str, data: bytes = b"", *headers: str) -> bytes:
    """One part, its delimiter line first."""
    lines = [f"Content-Disposition: {disposition}", *headers]
    head = "".join(f"{line}\r\n" for line in lines).encode()
    return b"--xyz\r\n" + head + b"\r\n" + data + b"\r\n"


def form(*parts: bytes, end: bytes = b"--xyz--\r\n") -> bytes:
    return b"".join(parts) + end


def field(name: str, value: bytes = b"v") -> bytes:
    return part(f'form-data; name="{name}"', value)


# --------------------------------------------------------------------------- harness


def _feed(pieces: list[bytes], limits: FormLimits) -> tuple:
    """(parts, None) or (None, the refusal): a part is (name, filename, type, data)."""
    parser = MultipartParser(BOUNDARY, limits)
    body = b"".join(pieces)
    parts, current, ended = [], None, False
    try:
        for event in [*(e for piece in pieces for e in parser.feed(piece)), *parser.finish()]:
            assert not ended, f"{event} after the end of the form"
            if isinstance(event, PartStart):
                assert current is None
                current = (event, bytearray())
            elif isinstance(event, PartData):
                assert event.data, "an empty data event"
                current[1].extend(event.data)
            elif isinstance(event, PartEnd):
                start, data = current
                # The offset points at the part's data in the body: what an upload reads.
                assert body[start.offset : start.offset + len(data)] == data
                parts.append((start.name, start.filename, start.content_type, bytes(data)))
                current = None
            else:
                assert isinstance(event, FormEnd) and current is None
                ended = True
    except MultipartError as error:
        assert error.status == 400 and "\n" not in error.message
        return None, error.message
    assert ended
    return tuple(parts), None


def parse(data: bytes, **limits) -> tuple:
    """Parse ``data`` cut every way ``splits`` knows; all must agree."""
    limits = FormLimits(**limits)
    outcomes = {name: _feed(pieces, limits) for name, pieces in splits(data)}
    differ = {name: o for name, o in outcomes.items() if o != outcomes["whole"]}
    assert not differ, f"the outcome depends on the split: {outcomes['whole']} vs {differ}"
    return outcomes["whole"]


def parts_of(data: bytes, **limits) -> tuple:
    parts, error = parse(data, **limits)
    assert error is None, error
    return parts


def refusal(data: bytes, **limits) -> str:
    parts, error = parse(data, **limits)
    assert error is not None, f"accepted: {parts}"
    return error


# --------------------------------------------------------------------------- valid forms

VALID = [
    pytest.param(form(field("a", b"hello")), (("a", None, "text/plain", b"hello"),),
                 id="one-text-field"),
    pytest.param(
        form(field("title", b"t"),
             part('form-data; name="doc"; filename="a.txt"', b"one", "Content-Type: text/csv"),
             part('form-data; name="doc"; filename="b.bin"', b"\x00\r\n\xff",
                  "Content-Type: application/octet-stream")),
        (("title", None, "text/plain", b"t"), ("doc", "a.txt", "text/csv", b"one"),
         ("doc", "b.bin", "application/octet-stream", b"\x00\r\n\xff")),
        id="a-field-and-two-files-under-one-name"),
    pytest.param(b"--xyz--\r\n", (), id="no-part-at-all"),
    pytest.param(form(field("a"), end=b"--xyz--"), (("a", None, "text/plain", b"v"),),
                 id="close-delimiter-without-crlf"),
    pytest.param(b"preamble, ignored\r\n" + form(field("a")) + b"epilogue, ignored",
                 (("a", None, "text/plain", b"v"),), id="preamble-and-epilogue"),
    pytest.param(b"--xyz \t\r\n" + part('form-data; name="a"')[7:] + b"--xyz-- \t\r\n",
                 (("a", None, "text/plain", b""),), id="transport-padding"),
    pytest.param(form(field("a", b"x\r\n--xy\r\n-xyz\r\r\n\r--\r--xyz--xyz")),
                 (("a", None, "text/plain", b"x\r\n--xy\r\n-xyz\r\r\n\r--\r--xyz--xyz"),),
                 id="data-with-what-looks-like-a-boundary-but-is-not"),
    pytest.param(form(field("a", b""), field("b", b"\r\n")),
                 (("a", None, "text/plain", b""), ("b", None, "text/plain", b"\r\n")),
                 id="empty-data-and-a-bare-crlf"),
    pytest.param(form(part("form-data; name=plain; filename=x.txt", b"1")),
                 (("plain", "x.txt", "text/plain", b"1"),), id="unquoted-parameters"),
    pytest.param(form(part('FORM-DATA ; NAME = "a\\"b\\\\c" ;', b"1")),
                 (('a"b\\c', None, "text/plain", b"1"),), id="escapes-case-and-spaces"),
    pytest.param(form(part('form-data; name="naïve ✓"; filename="résumé.pdf"', b"1")),
                 (("naïve ✓", "résumé.pdf", "text/plain", b"1"),), id="utf-8-names"),
    pytest.param(form(part('form-data; name="f"; filename="../../etc/passwd"', b"1")),
                 (("f", "passwd", "text/plain", b"1"),), id="filename-path-dropped"),
    pytest.param(form(part('form-data; name="f"; filename="C:\\Users\\me\\a.txt"', b"1")),
                 (("f", "a.txt", "text/plain", b"1"),), id="filename-windows-path-dropped"),
    pytest.param(form(part('form-data; name="f"; filename=""', b"")),
                 (("f", "", "text/plain", b""),), id="no-file-chosen"),
    pytest.param(form(part("form-data; name=\"f\"; filename=\"a\tb.txt\"", b"1")),
                 (("f", "ab.txt", "text/plain", b"1"),), id="filename-tab-dropped"),
    pytest.param(form(part("form-data; name=f; filename=x; filename*=UTF-8''%E2%9C%93.txt",
                           b"1")),
                 (("f", "✓.txt", "text/plain", b"1"),), id="filename-star-wins"),
    pytest.param(form(part('form-data; name="a"', b"1", "Content-Transfer-Encoding: binary",
                           "X-Other: kept, ignored")),
                 (("a", None, "text/plain", b"1"),), id="identity-transfer-encoding-and-others"),
]


@pytest.mark.parametrize(("data", "expected"), VALID)
def test_valid_form(data, expected):
    assert parts_of(data) == expected


def test_every_part_header_is_kept_in_order():
    parser = MultipartParser(BOUNDARY)
    events = parser.feed(form(part(A, b"1", "X-One: 1", "content-type: text/x")))
    assert events[0].headers == (("content-disposition", 'form-data; name="a"'),
                                 ("x-one", "1"), ("content-type", "text/x"))


# --------------------------------------------------------------------------- refusals

INVALID = [
    pytest.param(b"", {}, "the body does not start with the boundary of its Content-Type",
                 id="empty-body"),
    pytest.param(b"x" * (MAX_PREAMBLE + 1) + b"\r\n" + form(field("a")), {},
                 "the body does not start with the boundary of its Content-Type",
                 id="preamble-too-long"),
    pytest.param(b"--other\r\n", {}, "the body does not start with the boundary of its "
                 "Content-Type", id="another-boundary"),
    pytest.param(form(field("a"), end=b""), {}, "the body ends before the closing boundary",
                 id="no-close-delimiter"),
    pytest.param(field("a")[:-4], {}, "the body ends before the closing boundary",
                 id="cut-in-the-data"),
    pytest.param(b"--xyz\r\nContent-Disp", {}, "the body ends before the closing boundary",
                 id="cut-in-the-headers"),
    pytest.param(b"--xyzjunk\r\n", {}, "a boundary line with something after it",
                 id="text-after-a-boundary"),
    pytest.param(form(field("a"), end=b"--xyz-x\r\n"), {},
                 "a boundary line with something after it", id="one-dash-after-a-boundary"),
    pytest.param(form(field("a", b"1\r\n--xyzz")), {}, "a boundary line with something after it",
                 id="the-boundary-inside-a-part"),
    pytest.param(b"--xyz \r" + b"\r\n", {}, "a boundary line with something after it",
                 id="bare-cr-after-a-boundary"),
    pytest.param(b"--xyz" + b" " * (MAX_PADDING + 1) + b"\r\n", {},
                 "too much whitespace after a boundary", id="padding-too-long"),
    pytest.param(form(field("a"), end=b"--xyz--junk"), {}, "data after the closing boundary",
                 id="junk-after-the-close-delimiter"),
    pytest.param(form(field("a"), end=b"--xyz--\r"), {}, "data after the closing boundary",
                 id="a-cr-after-the-close-delimiter"),
    pytest.param(form(field("a")) + b"e" * (MAX_EPILOGUE + 1), {},
                 f"more than {MAX_EPILOGUE} bytes after the closing boundary",
                 id="epilogue-too-long"),
    pytest.param(form(part(A, b"", "X: " + "y" * 100)), {"max_part_header_size": 100},
                 "a part's header section is larger than 100 bytes", id="header-section-too-large"),
    pytest.param(form(part(A, b"", *["X: y"] * 3)), {"max_part_header_lines": 3},
                 "a part has more than 3 header lines", id="too-many-header-lines"),
    pytest.param(form(part(A, b"", " folded")), {},
                 "a part's header line starts with whitespace (obsolete line folding)",
                 id="obs-fold"),
    pytest.param(form(part(A, b"", "no colon")), {}, "a part's header line without a colon",
                 id="no-colon"),
    pytest.param(form(part(A, b"", "X : y")), {},
                 "whitespace before the colon in a part's header line", id="space-before-colon"),
    pytest.param(form(part(A + "\x00", b"")), {},
                 "a part's header line with an invalid character (CR, LF, NUL or another control)",
                 id="nul-in-a-header"),
    pytest.param(form(part(A + "\nX: y", b"")), {},
                 "a part's header line with an invalid character (CR, LF, NUL or another control)",
                 id="bare-lf-in-a-header"),
    pytest.param(form(b"--xyz\r\nContent-Type: text/plain\r\n\r\nv\r\n"), {},
                 "a part without Content-Disposition", id="no-content-disposition"),
    pytest.param(form(part('attachment; name="a"')), {},
                 "a part whose Content-Disposition is not form-data", id="not-form-data"),
    pytest.param(form(part('form-data; filename="a"')), {}, "a part without a name",
                 id="no-name"),
    pytest.param(form(part('form-data; name="a"; name="b"')), {},
                 "Content-Disposition has name twice", id="name-twice"),
    pytest.param(form(part('form-data; name="a"; filename="a"; FILENAME="b"')), {},
                 "Content-Disposition has filename twice", id="filename-twice"),
    pytest.param(form(part(A, b"", f"Content-Disposition: {A}")), {},
                 "a part with two content-disposition header fields", id="disposition-twice"),
    pytest.param(form(part(A, b"", "Content-Type: text/a", "Content-Type: text/b")), {},
                 "a part with two content-type header fields", id="content-type-twice"),
    pytest.param(form(part('form-data; name="a')), {}, "malformed Content-Disposition",
                 id="unterminated-quote"),
    pytest.param(form(part("form-data; name")), {}, "malformed Content-Disposition",
                 id="parameter-without-value"),
    pytest.param(form(part(A, b"", "Content-Transfer-Encoding: base64")), {},
                 "Content-Transfer-Encoding 'base64' is not supported", id="base64"),
    pytest.param(form(part(A, b"", "Content-Type: text")), {},
                 "a part's Content-Type is not a media type", id="content-type-not-a-media-type"),
    pytest.param(form(part("form-data; name=f; filename*=UTF-8''a%00b")), {},
                 "a filename with a NUL character", id="nul-in-filename-star"),
    pytest.param(form(part("form-data; name=f; filename*=a%20b")), {},
                 "malformed filename* in Content-Disposition", id="malformed-filename-star"),
    pytest.param(form(part("form-data; name=f; filename*=UTF-8''%FF")), {},
                 "filename* in Content-Disposition is not UTF-8", id="filename-star-not-utf-8"),
    pytest.param(form(part('form-data; name="f"; filename=".."')), {},
                 "the filename '..' names no file", id="filename-dot-dot"),
    pytest.param(form(part('form-data; name="f"; filename="uploads/"')), {},
                 "the filename 'uploads/' names no file", id="filename-a-folder"),
    pytest.param(form(*[field(str(i)) for i in range(4)]), {"max_parts": 3},
                 "more than 3 parts in the form", id="too-many-parts"),
    pytest.param(form(field("a", b"x" * 10), field("b", b"y" * 7)), {"max_fields_size": 16},
                 "the text fields are larger than 16 bytes", id="text-fields-too-large"),
]


@pytest.mark.parametrize(("data", "limits", "reason"), INVALID)
def test_invalid_form_is_refused_with_its_reason(data, limits, reason):
    assert refusal(data, **limits) == reason


def test_the_limits_let_a_form_just_at_them_through():
    at_limits = form(*[field(str(i), b"x" * 4) for i in range(3)])
    assert len(parts_of(at_limits, max_parts=3, max_fields_size=12)) == 3
    header = part(A, b"", "X: " + "y" * 20)
    size = len(header) - len(b"--xyz\r\n") - len(b"\r\n")  # the section, its empty line too
    assert parts_of(form(header), max_part_header_size=size)
    assert refusal(form(header), max_part_header_size=size - 1).startswith("a part's header")
    assert parts_of(form(part(A, b"", "X: 1", "Y: 2")), max_part_header_lines=3)
    assert parts_of(b"x" * MAX_PREAMBLE + b"\r\n" + form(field("a")))
    assert parts_of(form(field("a")) + b"e" * MAX_EPILOGUE)


def test_file_parts_do_not_count_as_text_fields():
    data = form(part('form-data; name="f"; filename="a"', b"x" * 100))
    assert parts_of(data, max_fields_size=16)[0][3] == b"x" * 100


def test_a_refused_parser_stays_refused():
    parser = MultipartParser(BOUNDARY)
    with pytest.raises(MultipartError):
        parser.feed(b"--xyzjunk\r\n")
    with pytest.raises(MultipartError, match="already refused"):
        parser.feed(form(field("a")))
    with pytest.raises(MultipartError, match="already refused"):
        parser.finish()


def test_a_large_part_is_handed_on_as_it_arrives_and_held_back_only_near_a_cr():
    parser = MultipartParser(BOUNDARY)
    assert isinstance(parser.feed(part(A)[:-2])[-1], PartStart)
    assert parser.feed(b"x" * 100_000) == [PartData(b"x" * 100_000)]
    assert parser.feed(b"y\r\n--x") == [PartData(b"y")]  # "\r\n--x" may be the boundary
    assert parser.feed(b"q\r\r\n-") == [PartData(b"\r\n--xq\r")]
    assert parser.feed(b"-xy") == []
    assert parser.feed(b"z--") == [PartEnd(), FormEnd()]


# --------------------------------------------------------------------------- boundary, filename


@pytest.mark.parametrize(("content_type", "boundary"), [
    ("multipart/form-data; boundary=xyz", b"xyz"),
    ("Multipart/Form-Data;boundary=\"a b'()+_,-./:=?\"", b"a b'()+_,-./:=?"),
    ("multipart/form-data; charset=utf-8; boundary=" + "b" * 70, b"b" * 70),
])
def test_boundary_of_a_content_type(content_type, boundary):
    assert boundary_of(content_type) == boundary


@pytest.mark.parametrize(("content_type", "reason"), [
    ("multipart/form-data", "multipart/form-data without a boundary"),
    ("multipart/form-data; charset=utf-8", "multipart/form-data without a boundary"),
    ("multipart/form-data; boundary=" + "b" * 71,
     "the multipart boundary is not 1 to 70 characters of RFC 2046"),
    ('multipart/form-data; boundary=""',
     "the multipart boundary is not 1 to 70 characters of RFC 2046"),
    ('multipart/form-data; boundary="ends with a space "',
     "the multipart boundary is not 1 to 70 characters of RFC 2046"),
    ("multipart/form-data; boundary=a*b",
     "the multipart boundary is not 1 to 70 characters of RFC 2046"),
    ("multipart/form-data; boundary=a; boundary=b", "Content-Type has boundary twice"),
    ("multipart/form-data; boundary", "malformed Content-Type"),
    ("multipart/mixed; boundary=a", "the Content-Type is not multipart/form-data"),
])
def test_a_bad_boundary_is_refused_with_its_reason(content_type, reason):
    with pytest.raises(MultipartError) as refused:
        boundary_of(content_type)
    assert refused.value.message == reason


@pytest.mark.parametrize(("raw", "safe"), [
    ("report.pdf", "report.pdf"), ("../../etc/passwd", "passwd"), ("a/b\\c.txt", "c.txt"),
    ("  spaced  ", "spaced"), ("bell\x07\x9b.txt", "bell.txt"), ("", ""), (".hidden", ".hidden"),
])
def test_safe_filename_keeps_the_name_alone(raw, safe):
    assert safe_filename(raw) == safe


@pytest.mark.parametrize("raw", [".", "..", "a/..", "dir/", "\\", " ", "\x01"])
def test_safe_filename_refuses_a_name_that_names_no_file(raw):
    with pytest.raises(MultipartError, match="names no file"):
        safe_filename(raw)


def test_safe_filename_refuses_nul():
    with pytest.raises(MultipartError, match="a filename with a NUL character"):
        safe_filename("a\x00.txt")


# --------------------------------------------------------------------------- split property

SMALL = FormLimits(max_parts=3, max_part_header_size=80, max_part_header_lines=3,
                   max_fields_size=12)
SEEDS = [
    form(field("a", b"hello"), part('form-data; name="f"; filename="x"', b"\r\n--xy\r")),
    form(part(A, b"", "Content-Type: text/plain"), end=b"--xyz--  \r\nepilogue"),
    b"pre\r\n--xyz \r\n" + part(A)[7:] + b"--xyz--",
]
MUTATIONS = [b"\r", b"\n", b"\r\n", b"-", b"--", b" ", b"\x00", b":", b";", b'"', b"\r\n--xyz"]


@st.composite
def cut_bodies(draw) -> tuple[bytes, list[bytes]]:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data)))
        if draw(st.booleans()) and at < len(data):
            del data[at]
        else:
            data[at:at] = draw(st.sampled_from(MUTATIONS))
    data = bytes(data)
    cuts = sorted({draw(st.integers(1, max(1, len(data) - 1))) for _ in range(draw(
        st.integers(0, 5)))} - {len(data)}) if len(data) > 1 else []
    return data, [data[a:b] for a, b in pairwise([0, *cuts, len(data)])]


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(cut_bodies())
def test_a_mutated_body_gives_the_same_outcome_however_it_is_cut(case):
    data, pieces = case
    assert _feed(pieces, SMALL) == _feed([data], SMALL)


# --------------------------------------------------------------------------- what views get

BODY = form(field("title", b"caf\xc3\xa9"), field("tag", b"a"), field("tag", b"b"),
            part('form-data; name="doc"; filename="a.txt"', b"first file",
                 "Content-Type: text/plain"),
            part('form-data; name="doc"; filename="b.bin"', bytes(range(256)) * 4,
                 "Content-Type: application/octet-stream"))
CONTENT_TYPE = "multipart/form-data; boundary=xyz"


def request_with(body, content_type: str = CONTENT_TYPE, **attributes) -> Requests:
    request = Requests("POST", "/", "HTTP/1.1", Headers({"Content-Type": content_type}), body)
    for name, value in attributes.items():
        setattr(request, name, value)
    return request


def test_request_form_and_files_of_a_multipart_body():
    request = request_with(BODY)
    assert request.form == {"title": "café", "tag": "a"}
    assert request.form.getlist("tag") == ["a", "b"]
    assert request.form.getlist("missing") == []
    first, second = request.files.getlist("doc")
    assert request.files["doc"] is first and list(request.files) == ["doc"]
    assert (first.name, first.filename, first.content_type, first.size) == (
        "doc", "a.txt", "text/plain", 10)
    assert first.headers["content-disposition"] == 'form-data; name="doc"; filename="a.txt"'
    assert first.read() == b"first file"
    assert (second.filename, second.size) == ("b.bin", 1024)
    assert second.read(3) == b"\x00\x01\x02" and second.stream.read(2) == b"\x03\x04"
    assert second.stream.seek(0) == 0 and second.stream.read() == bytes(range(256)) * 4


def test_request_form_of_a_urlencoded_body_keeps_every_value_too():
    request = request_with(b"a=1&b=2&a=3", "application/x-www-form-urlencoded")
    assert request.form == {"a": "1", "b": "2"} and request.form.getlist("a") == ["1", "3"]
    assert request.files == {}


def test_request_form_of_another_body_is_empty():
    request = request_with(b"--xyz--", "text/plain")
    assert request.form == {} and request.files == {}


def test_a_malformed_multipart_body_raises_a_400_from_form_and_files():
    request = request_with(b"--xyz\r\n\r\n\r\n--xyz--")
    for read in (lambda: request.form, lambda: request.files):
        with pytest.raises(MultipartError) as refused:
            read()
        assert (refused.value.status, refused.value.message) == (
            400, "a part without Content-Disposition")


def test_request_form_limits_are_used_when_set():
    with pytest.raises(MultipartError, match="more than 4 parts"):
        _ = request_with(BODY, form_limits=FormLimits(max_parts=4)).form
    assert len(request_with(BODY, form_limits=FormLimits(max_parts=5)).files.getlist("doc")) == 2


def test_form_and_files_are_read_only():
    request = request_with(BODY)
    for mapping in (request.form, request.files):
        for change in (lambda m: m.__setitem__("x", 1), lambda m: m.pop("title"),
                       lambda m: m.update(x=1), lambda m: m.clear(), lambda m: m.setdefault("x"),
                       lambda m: m.__delitem__("doc")):
            with pytest.raises(TypeError, match="read-only"):
                change(mapping)
    assert MultiDict([("a", 1), ("a", 2)]).lists() == [("a", [1, 2])]


def test_an_upload_on_disk_reads_without_moving_the_request_stream():
    body = tempfile.TemporaryFile()
    body.write(BODY)
    body.seek(0)
    request = request_with(body)
    upload = request.files["doc"]
    assert request.stream.tell() == 0
    assert upload.read(5) == b"first"
    assert request.stream.tell() == 0 and request.stream.read(5) == b"--xyz"
    assert upload.read() == b" file"
    request.close()
    assert body.closed and upload.closed
    with pytest.raises(ValueError):
        upload.read()


def test_save_copies_the_whole_file_to_a_path_or_a_file(tmp_path):
    upload = request_with(BODY).files.getlist("doc")[1]
    upload.read(100)
    upload.save(tmp_path / "b.bin")
    assert (tmp_path / "b.bin").read_bytes() == bytes(range(256)) * 4
    out = io.BytesIO()
    upload.save(out)
    assert out.getvalue() == bytes(range(256)) * 4
    with pytest.raises(FileNotFoundError):
        upload.save(tmp_path / "missing" / "b.bin")


def test_close_closes_every_upload():
    request = request_with(BODY)
    uploads = request.files.getlist("doc")
    request.close()
    assert all(upload.closed for upload in uploads)
    assert isinstance(uploads[0], UploadedFile)


def test_parse_form_of_a_large_body_on_disk_holds_little_memory():
    size = 8 * 1024 * 1024
    body = tempfile.TemporaryFile()
    body.write(form(field("a"), part('form-data; name="f"; filename="big"', b"x" * size)))
    tracemalloc.start()
    try:
        fields, files = parse_form(body, CONTENT_TYPE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        body.close()
    assert files["f"].size == size and fields == {"a": "v"}
    assert peak < 1024 * 1024, f"parsing held {peak} bytes at its peak"
