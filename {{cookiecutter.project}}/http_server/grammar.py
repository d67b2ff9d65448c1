"""The request grammar of RFC 9110/9112, written once as compiled byte regexes.

Every number and token on the wire is matched here with ``fullmatch`` before
any conversion: ``int()`` alone would accept ``+1``, ``1_0``, `` 1`` and
non-ASCII digits, each a door to request smuggling.
"""

import re

TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
TOKEN = re.compile(TCHAR + rb"+")

# method SP request-target SP HTTP-version; the target is visible ASCII only.
REQUEST_LINE = re.compile(rb"(" + TCHAR + rb"+) ([\x21-\x7e]+) (HTTP/[0-9]\.[0-9])")
# The method at the start of a request line, to know a HEAD that is refused before it is parsed.
METHOD_PREFIX = re.compile(rb"(" + TCHAR + rb"+) ")
# Anything that looks like a version, to tell 505 (well-formed, unsupported) from 400.
HTTP_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")

# field-line = field-name ":" OWS field-value OWS, with no obs-fold and no
# control characters (CR, LF, NUL included) anywhere in the value.
_VCHAR = rb"[\x21-\x7e\x80-\xff]"
# The value is one run of allowed bytes that starts and ends with a visible one, so
# the regex engine walks it once (a per-character group backtracks over a long value).
FIELD_LINE = re.compile(
    rb"(" + TCHAR + rb"+):[ \t]*(" + _VCHAR + rb"(?:[\t \x21-\x7e\x80-\xff]*" + _VCHAR
    + rb")?)?[ \t]*"
)

# origin-form = absolute-path [ "?" query ] (RFC 9112 section 3.2.1, RFC 3986 section 3.3):
# pchar = unreserved / pct-encoded / sub-delims / ":" / "@". The query also takes the
# characters browsers send there unencoded ([ ] { } | \\ ^ `, WHATWG URL's query set), but
# never a quote, angle brackets or a control character.
_PATH_CHARS = rb"A-Za-z0-9\-._~!$&'()*+,;=:@%/"
ORIGIN_FORM = re.compile(rb"/[" + _PATH_CHARS + rb"]*(?:\?[" + _PATH_CHARS + rb"?\[\]{}|\\^`]*)?")
# The common request line, whose target needs no further check: origin-form with no "%"
# in its path, HTTP/1.0 or 1.1, not CONNECT. Anything else takes the general path (parser.py).
COMMON_REQUEST_LINE = re.compile(
    rb"(?!CONNECT )(" + TCHAR + rb"+) (/[" + _PATH_CHARS.replace(b"%", b"") + rb"]*(?:\?["
    + _PATH_CHARS + rb"?\[\]{}|\\^`]*)?) HTTP/1\.([01])"
)
# The same, as text: the request line of a head decoded as latin-1 (parser.py).
COMMON_REQUEST_LINE_TEXT = re.compile(COMMON_REQUEST_LINE.pattern.decode("ascii"))
# In the path, "%" must start a pct-encoded octet.
BAD_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")
# A percent-encoded control character (%00-%1F, %7F) in the path: refused, so that no route
# pattern's "$" can match before a decoded newline (Python's "$" matches before a final "\n").
ENCODED_CONTROL = re.compile(rb"%(?:[01][0-9A-Fa-f]|7[Ff])")
# authority-form = uri-host ":" port (RFC 9112 section 3.2.3), only for CONNECT.
AUTHORITY_FORM = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]+):[0-9]+")

# The same, as text: a field line of a head decoded as latin-1, which maps each byte to
# the character of the same number, so the classes stay the same (parser.py).
FIELD_LINE_TEXT = re.compile(FIELD_LINE.pattern.decode("latin-1"))

# The fields that decide a request's framing and the connection's fate (parser.py).
FRAMING_FIELDS = frozenset(
    {"content-length", "transfer-encoding", "host", "connection", "expect", "content-type"}
)

# Fields that must not be sent in a trailer section (RFC 9110 section 6.5.1):
# framing, routing, request modifiers and authentication.
FORBIDDEN_TRAILERS = frozenset(
    {
        "authorization", "cache-control", "connection", "content-encoding",
        "content-length", "content-range", "content-type", "cookie", "expect",
        "host", "keep-alive", "max-forwards", "pragma", "proxy-authorization",
        "range", "set-cookie", "te", "trailer", "transfer-encoding", "upgrade",
    }
)


# Host = uri-host [ ":" port ] (RFC 9112 section 3.2, RFC 3986 section 3.2.2); may be empty.
HOST = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?"
)

CHUNK_SIZE_DIGITS = 16
# chunk = chunk-size [ chunk-ext ] CRLF; chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] )
_QUOTED_STRING = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
# Whitespace is allowed only around a chunk extension's ";" and "=" (RFC 9112 section 7.1):
# never straight after the size, never at the end of the line.
CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,%d})((?:[ \t]*;[ \t]*%s+(?:[ \t]*=[ \t]*(?:%s+|%s))?)*)"
    % (CHUNK_SIZE_DIGITS, TCHAR, TCHAR, _QUOTED_STRING)
)

# Header values a view sets: no CR, LF, NUL or other control character but tab.
SAFE_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\uffff]*")
SAFE_HEADER_NAME = re.compile(TCHAR.decode("ascii") + "+")  # a token, as a str pattern


def field_line_fault(line: bytes) -> str:
    """Why a line that FIELD_LINE refused is not a field line: "fold" (it starts with
    whitespace: obsolete line folding), "colon" (it has none), "space" (whitespace
    before the colon) or "character" (a byte the grammar does not allow)."""
    if line[:1] in (b" ", b"\t"):
        return "fold"
    name, colon, _ = line.partition(b":")
    if not colon:
        return "colon"
    if name.endswith((b" ", b"\t")):
        return "space"
    return "character"
