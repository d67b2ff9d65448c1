#!/usr/bin/env bash
# Installs what `make bench` needs; idempotent, so `make bench` runs it every time.
#   - wrk (load generator), nginx (reference for static files) and valgrind (instructions per
#     request, bench/instructions.py) from Debian's packages;
#   - bench/.venv with the peers (waitress, gunicorn, uvicorn + h11 / httptools / uvloop) and
#     python-multipart and matplotlib, pinned in bench/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    echo "bench: installing ${missing[*]} from Debian's packages"
    $sudo apt-get update -qq
    # nginx-light (bookworm) is the smallest nginx; fall back to nginx where it does not exist.
    if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
            "${missing[@]}"; then
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
            "${missing[@]/nginx-light/nginx}"
    fi
fi

stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ]; then
    echo "bench: creating bench/.venv with the peers"
    "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r requirements.txt
    touch "$stamp"
fi
