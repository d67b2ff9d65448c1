# Try the template without installing anything: `docker compose up` in a clone of this
# repository renders the default service (cookiecutter --no-input) and serves it on
# http://localhost:8080.
#
# The second stage repeats {{cookiecutter.project}}/Dockerfile as rendered with the default
# answers, with its two COPY lines taking the rendered service from the first stage;
# tests/docker/test_docker_files.py fails when the two drift apart.
ARG PYTHON_VERSION=3.12

# Stage 1: render the default service into /service.
FROM python:${PYTHON_VERSION}-slim AS render
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m pip install --no-cache-dir cookiecutter==2.7.1
COPY . /template
# The post-generation hook writes .env for `make run`; in the image, settings come from
# the image and from compose instead (the generated .dockerignore keeps .env out too).
RUN cookiecutter --no-input --output-dir /rendered /template \
    && mv /rendered/* /service \
    && rm -f /service/.env

# Stage 2: the service image, as in {{cookiecutter.project}}/Dockerfile.
FROM python:${PYTHON_VERSION}-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    MALLOC_ARENA_MAX=2 \
    HOST=0.0.0.0 \
    PORT=8080

WORKDIR /app

COPY --from=render /service/requirements.txt .
RUN python -m pip install --no-cache-dir -r requirements.txt

ARG APP_UID=10001
ARG APP_GID=10001
RUN if [ "$APP_UID" = 0 ] || [ "$APP_GID" = 0 ]; then \
        echo "APP_UID and APP_GID must not be 0: the server never runs as root" >&2; exit 1; \
    fi \
    && groupadd --non-unique --gid "$APP_GID" app \
    && useradd --non-unique --uid "$APP_UID" --gid "$APP_GID" --no-log-init \
        --no-create-home --home-dir /app app
COPY --from=render /service/ .
RUN mkdir -p media && chown -R "$APP_UID:$APP_GID" media
USER ${APP_UID}:${APP_GID}

EXPOSE 8080

HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import http.client, os, sys; c = http.client.HTTPConnection('127.0.0.1', int(os.environ.get('PORT', '8080')), timeout=2); c.request('GET', '/healthz'); sys.exit(c.getresponse().status != 200)"]

CMD ["python", "main.py"]
