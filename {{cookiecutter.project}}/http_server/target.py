"""The request target: which of RFC 9112's four forms it has, and whether the server serves it.

The router only ever sees origin-form (a path and a query), checked against its
grammar; absolute-form is rewritten to it, ``*`` is for ``OPTIONS`` alone, and
authority-form is for ``CONNECT`` alone, which this server refuses.
"""

from __future__ import annotations

from . import grammar
from .errors import BadRequest, MethodNotImplemented


def checked_target(method: str, target: bytes) -> tuple[str, str | None]:
    """The request target as a path for the router, and the authority of an absolute-form
    target (None for any other form); or a refusal (RFC 9112 section 3.2).

    origin-form is checked against its grammar; absolute-form becomes origin-form, and
    its authority replaces the Host field (RFC 9112 section 3.2.2);
    ``*`` is for OPTIONS alone (the server answers it itself); authority-form is for
    CONNECT alone, and CONNECT is refused before routing: this server does not
    tunnel, and a 2xx would tell the client that the rest of the connection is one.
    """
    if target[:1] == b"/":
        if method == "CONNECT":
            raise BadRequest("CONNECT needs an authority-form target")
        return checked_origin_form(target), None
    if target == b"*":
        if method != "OPTIONS":
            raise BadRequest("only OPTIONS may have the target *")
        return "*", None
    authority_form = grammar.AUTHORITY_FORM.fullmatch(target) is not None
    if method == "CONNECT":
        if authority_form:
            raise MethodNotImplemented("CONNECT is not supported: this server does not tunnel")
        raise BadRequest("CONNECT needs an authority-form target")
    lower = target[:8].lower()
    for scheme in (b"http://", b"https://"):
        if lower.startswith(scheme):
            rest = target[len(scheme):]
            cut = len(rest)
            for separator in (b"/", b"?"):
                found = rest.find(separator)
                if 0 <= found < cut:
                    cut = found
            authority, path = rest[:cut], rest[cut:]
            if not authority:
                raise BadRequest("absolute-form target without an authority")
            if b"@" in authority:
                raise BadRequest("userinfo in the request target")  # RFC 9110 section 4.2.4
            if grammar.HOST.fullmatch(authority.decode("ascii")) is None:
                raise BadRequest("invalid authority in the request target")
            path = checked_origin_form(b"/" + path if path[:1] != b"/" else path)
            return path, authority.decode("ascii")
    if authority_form:
        raise BadRequest("authority-form is only for CONNECT")
    raise BadRequest("request target is not origin-form or absolute-form")


def checked_origin_form(target: bytes) -> str:
    if grammar.ORIGIN_FORM.fullmatch(target) is None:
        raise BadRequest("invalid character in the request target")
    if b"%" in target:
        path = target.partition(b"?")[0]
        if grammar.BAD_PERCENT.search(path) is not None:
            raise BadRequest("a % in the path is not followed by two hex digits")
        if grammar.ENCODED_CONTROL.search(path) is not None:
            raise BadRequest("a control character in the decoded path")
    return target.decode("ascii")
