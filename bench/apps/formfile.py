"""The first file of a multipart/form-data body, for the peers' upload view (python-multipart).

Parsed as Starlette parses forms: python-multipart's FormParser fed the body chunk by chunk,
each file in a temporary file past 1 MiB; the view then reads the file back. Imported only by
the upload view, so that the rest of the apps need nothing outside the standard library.
"""

from python_multipart import FormParser
from python_multipart.multipart import parse_options_header
from tiny import Digest

MAX_MEMORY_FILE_SIZE = 1024 * 1024  # then on disk, like ours' BODY_SPOOL_SIZE


class FirstFile:
    """Feed it the body's chunks; ``digest()`` then reads its first file back."""

    def __init__(self, content_type: str) -> None:
        _, options = parse_options_header(content_type)
        self.files = []
        self.parser = FormParser(
            "multipart/form-data", on_field=lambda field: None, on_file=self.files.append,
            boundary=options[b"boundary"],
            config={"MAX_MEMORY_FILE_SIZE": MAX_MEMORY_FILE_SIZE})

    def write(self, chunk: bytes) -> None:
        self.parser.write(chunk)

    def digest(self) -> Digest:
        self.parser.finalize()
        if not self.files:
            raise ValueError("no file in the form")
        upload = self.files[0].file_object
        upload.seek(0)
        try:
            return Digest().read_all(upload)
        finally:
            for f in self.files:
                f.close()
