"""Cookies for the test client: what a response set, and a jar that sends them back.

``CookieJar`` is an ``http.cookiejar`` jar (the one ``requests`` uses) with a
mapping's face; ``ResponseCookies`` is what one response set, with attributes.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from http import cookiejar


class ResponseCookies(dict):
    """The cookies one response set, name -> value, each with the attributes it was sent with.

    Every ``Set-Cookie`` is here, deletions (``Max-Age=0``) and cookies for
    another domain included: it says what the app sent, not what a jar keeps.
    """

    def __init__(self, set_cookie_values: Iterable[str]) -> None:
        super().__init__()
        self._attributes: dict[str, dict[str, str | bool]] = {}
        for set_cookie in set_cookie_values:
            name_value, *attributes = set_cookie.split(";")
            name, _, value = name_value.partition("=")
            name = name.strip()
            self[name] = value.strip()
            self._attributes[name] = parse_cookie_attributes(attributes)

    def attributes(self, name: str) -> dict[str, str | bool]:
        """``{"path": "/", "max-age": "0", "secure": True, ...}``: lower-case names."""
        return self._attributes[name]


def parse_cookie_attributes(attributes: list[str]) -> dict[str, str | bool]:
    parsed: dict[str, str | bool] = {}
    for attribute in attributes:
        name, equals, value = attribute.partition("=")
        name = name.strip().lower()
        if name:
            parsed[name] = value.strip() if equals else True
    return parsed


class _CookiePolicy(cookiejar.DefaultCookiePolicy):
    """The standard rules, but a cookie with ``Domain=`` the host goes back to a host
    without a dot (``testserver``), which http.cookiejar compares as ``testserver.local``."""

    def return_ok_domain(self, cookie: cookiejar.Cookie, request) -> bool:
        if cookie.domain.lstrip(".") == cookiejar.eff_request_host(request)[0]:
            return True
        return super().return_ok_domain(cookie, request)


class CookieJar(cookiejar.CookieJar):
    """The client's cookies: the rules of ``http.cookiejar`` (as in ``requests``: expiry,
    deletion, Path, Domain and Secure), plus the name -> value calls of a dict."""

    def __init__(self, domain: str) -> None:
        super().__init__(_CookiePolicy())
        self.domain = domain  # of cookies set by hand: the client's host, as the app's are

    def set(self, name: str, value: str, path: str = "/") -> None:
        """Set a cookie for the client's host, replacing the app's cookie of that name and path."""
        self.set_cookie(cookiejar.Cookie(
            version=0, name=name, value=value, port=None, port_specified=False,
            domain=self.domain, domain_specified=False, domain_initial_dot=False,
            path=path, path_specified=True, secure=False, expires=None, discard=True,
            comment=None, comment_url=None, rest={}))

    def get(self, name: str, default=None, path: str | None = None):
        """The value of the cookie ``name`` (at ``path`` if given), or ``default``."""
        found = [cookie for cookie in self
                 if cookie.name == name and (path is None or cookie.path == path)]
        if len(found) > 1:
            places = ", ".join(f"{cookie.domain}{cookie.path}" for cookie in found)
            raise ValueError(f"several cookies are named {name!r} ({places}): pass path=")
        return found[0].value if found else default

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        found = [cookie for cookie in self if cookie.name == name]
        if not found:
            raise KeyError(name)
        for cookie in found:
            self.clear(cookie.domain, cookie.path, cookie.name)

    def __contains__(self, name: object) -> bool:
        return any(cookie.name == name for cookie in self)

    def keys(self) -> list[str]:
        return [cookie.name for cookie in self]

    def values(self) -> list[str]:
        return [cookie.value for cookie in self]

    def items(self) -> list[tuple[str, str]]:
        return [(cookie.name, cookie.value) for cookie in self]

    def get_dict(self) -> dict[str, str]:
        return dict(self.items())

    def update(self, cookies: Mapping[str, str] | cookiejar.CookieJar) -> None:
        if isinstance(cookies, cookiejar.CookieJar):
            for cookie in cookies:
                self.set_cookie(copy.copy(cookie))
        else:
            for name, value in cookies.items():
                self.set(name, value)


class SetCookieSource:
    """What ``CookieJar.extract_cookies`` reads a response through: ``info().get_all``."""

    def __init__(self, set_cookie_values: list[str]) -> None:
        self.set_cookie_values = set_cookie_values

    def info(self) -> SetCookieSource:
        return self

    def get_all(self, name: str, default=None):
        if name.lower() == "set-cookie" and self.set_cookie_values:
            return self.set_cookie_values
        return default
