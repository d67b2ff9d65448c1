"""What every test suite of the template shares (tests/conftest.py makes it importable).

* ``support.paths``: the repository root and the template's project folder.
* ``support.ports``: ``free_port()``, a TCP port of 127.0.0.1 nobody listens on.
* ``support.rawhttp``: the raw HTTP client, ``RawConnection``, which sends bytes as
  given and parses the answers itself; ``request_bytes``, ``raw_request`` and
  ``read_response`` are built on it.
* ``support.processes``: ``ServerProcess``, a real server in its own Python process.

The generated project's own tests (``{{cookiecutter.project}}/tests/``) ship to users
and never import this package.
"""
