"""Routes: a regular expression on the path, the view that answers, and a name.

The first match wins; named groups become keyword arguments of the view;
`reverse("name", **groups)` builds a path back from the name.
"""

import views
from http_server import Path

urlpatterns = [
    Path(r"^/$", views.index, name="index"),
    Path(r"^/home$", views.home, name="home", methods=["GET"]),
    Path(r"^/api/hello/(?P<username>[^/]+)$", views.hello, name="hello", methods=["GET"]),
    Path(r"^/api/greetings$", views.greet, name="greet", methods=["POST"]),
    Path(r"^/api/info$", views.info, name="info", methods=["GET"]),
    Path(r"^/healthz$", views.healthz, name="healthz", methods=["GET"]),
]
