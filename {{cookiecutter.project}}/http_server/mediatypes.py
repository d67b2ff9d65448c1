"""Media types: the ``Content-Type`` of a file from its name.

A fixed table, the same on every machine: the standard library's built-in one
(``MimeTypes()`` does not read the machine's ``/etc/mime.types``), plus what it
lacks or names in an old-fashioned way. Text gets ``charset=utf-8``; an
unknown extension is ``application/octet-stream``.
"""

from __future__ import annotations

import mimetypes
import os

__all__ = ["OCTET_STREAM", "content_type_for"]

_TYPES: dict[str, str] = dict(mimetypes.MimeTypes().types_map[True])
_TYPES.update(
    {
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".cjs": "text/javascript",
        ".map": "application/json",
        ".md": "text/markdown",
        ".markdown": "text/markdown",
        ".yaml": "application/yaml",
        ".yml": "application/yaml",
        ".toml": "application/toml",
        ".jsonld": "application/ld+json",
        ".webp": "image/webp",
        ".avif": "image/avif",
        ".ico": "image/x-icon",
        ".woff": "font/woff",
        ".woff2": "font/woff2",
        ".ttf": "font/ttf",
        ".otf": "font/otf",
        ".gz": "application/gzip",
        ".tgz": "application/gzip",
        ".bz2": "application/x-bzip2",
        ".xz": "application/x-xz",
        ".zst": "application/zstd",
        ".br": "application/octet-stream",
        ".7z": "application/x-7z-compressed",
        ".xml": "application/xml",
        ".opus": "audio/ogg",
        ".ogg": "audio/ogg",
        ".oga": "audio/ogg",
        ".ogv": "video/ogg",
        ".flac": "audio/flac",
        ".m4a": "audio/mp4",
        ".mkv": "video/x-matroska",
        ".apng": "image/apng",
        ".heic": "image/heic",
    }
)
_TEXTUAL = {
    "application/javascript",
    "application/json",
    "application/ld+json",
    "application/manifest+json",
    "application/xml",
    "application/yaml",
    "application/toml",
    "image/svg+xml",
}
OCTET_STREAM = "application/octet-stream"


def content_type_for(name: str) -> str:
    """The ``Content-Type`` for a file name, from its last extension only.

    ``a.tar.gz`` is ``application/gzip`` (no ``Content-Encoding``: the bytes
    are served as they are stored).
    """
    ext = os.path.splitext(name)[1].lower()
    ctype = _TYPES.get(ext)
    if ctype is None:
        return OCTET_STREAM
    if ctype.startswith("text/") or ctype in _TEXTUAL:
        return ctype + "; charset=utf-8"
    return ctype
