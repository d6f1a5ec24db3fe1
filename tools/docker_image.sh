#!/usr/bin/env bash
# Build the Pilothouse container image (`make image`; README, "Container image").
#
# 1. Pick the base image. BASE=auto (default) uses the official Python image when the
#    engine has it or can pull it, and otherwise a local base: Debian bookworm made with
#    `debootstrap --variant=minbase` (python3, python3-venv, ca-certificates) and
#    `docker import`ed, for machines that reach no registry. BASE=official or BASE=local
#    forces one; any other value is used as the base image reference itself.
# 2. Build every wheel on the host (the Docker build then needs no network): the
#    dependencies once per pyproject.toml, the project itself on every run (2 s, and
#    byte-identical when nothing changed, so the engine's layer cache still hits).
# 3. `docker build` with --build-arg BASE_IMAGE.
#
# Everything is cached under build/docker/: the debootstrap tarball (re-imported if the
# engine lost the base image), the wheels. A second run with nothing changed takes seconds.
#
# Environment: IMAGE (pilothouse:latest), BASE (auto), OFFICIAL_BASE (python:3.11-slim),
# LOCAL_BASE (pilothouse-base:bookworm), EXTRAS (sklearn,docker), PIP (.venv/bin/pip),
# DEBIAN_MIRROR (http://deb.debian.org/debian), PULL_TIMEOUT_S (60), DOCKER (docker).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-pilothouse:latest}
BASE=${BASE:-auto}
OFFICIAL_BASE=${OFFICIAL_BASE:-python:3.11-slim}
LOCAL_BASE=${LOCAL_BASE:-pilothouse-base:bookworm}
EXTRAS=${EXTRAS:-sklearn,docker}
PIP=${PIP:-.venv/bin/pip}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PULL_TIMEOUT_S=${PULL_TIMEOUT_S:-60}
DOCKER=${DOCKER:-docker}
CACHE=build/docker

say() { printf 'docker_image: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
has_image() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# The debootstrap tree is trimmed of what a server never reads (apt's downloads and lists,
# documentation, translations): about 130 MB instead of 275 MB.
make_base_tarball() {
    local root="$CACHE/rootfs" tarball="$CACHE/base-bookworm.tar"
    command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
    [ "$(id -u)" = 0 ] || die "debootstrap needs root to make $LOCAL_BASE"
    release_mounts "$root"
    rm -rf "$root"
    say "debootstrap bookworm from $DEBIAN_MIRROR (about a minute)"
    # Expanded now: the trap may run after this function's locals are gone.
    trap "release_mounts '$root'; rm -rf '$root'" EXIT
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$root" "$DEBIAN_MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
        || die "debootstrap failed; see $CACHE/debootstrap.log"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
        "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
        "$root"/usr/share/info/* "$root"/usr/share/locale/* "$root"/var/log/*
    # The engine gives every container its own /dev, /proc and /sys.
    tar --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
        -C "$root" -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
    rm -rf "$root"
    trap - EXIT
}

release_mounts() {
    local dir
    for dir in "$1/proc" "$1/sys" "$1/dev/pts"; do
        if mountpoint -q "$dir" 2>/dev/null; then umount "$dir"; fi
    done
}

local_base() {
    has_image "$LOCAL_BASE" && return 0
    [ -f "$CACHE/base-bookworm.tar" ] || make_base_tarball
    say "importing $CACHE/base-bookworm.tar as $LOCAL_BASE"
    "$DOCKER" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        "$CACHE/base-bookworm.tar" "$LOCAL_BASE" >/dev/null
}

official_base() {
    has_image "$OFFICIAL_BASE" && return 0
    timeout "$PULL_TIMEOUT_S" "$DOCKER" pull --quiet "$OFFICIAL_BASE" >/dev/null 2>&1
}

choose_base() {
    case "$BASE" in
        auto)
            if official_base; then
                echo "$OFFICIAL_BASE"
            else
                say "$OFFICIAL_BASE is not here and cannot be pulled: using $LOCAL_BASE"
                local_base
                echo "$LOCAL_BASE"
            fi ;;
        official) official_base || die "cannot pull $OFFICIAL_BASE (try BASE=local)"
            echo "$OFFICIAL_BASE" ;;
        local) local_base; echo "$LOCAL_BASE" ;;
        *) has_image "$BASE" \
               || timeout "$PULL_TIMEOUT_S" "$DOCKER" pull --quiet "$BASE" >/dev/null 2>&1 \
               || die "base image $BASE is neither here nor pullable"
           echo "$BASE" ;;
    esac
}

# Wheels are tagged for one Python (cp311): the base must run the same minor version.
check_python() {
    local base=$1 here there
    here=$("$PIP" --version | sed -E 's/.*\(python ([0-9]+\.[0-9]+)\)$/\1/')
    there=$("$DOCKER" run --rm --entrypoint python3 "$base" \
        -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    [ "$here" = "$there" ] \
        || die "$base runs Python $there but $PIP builds wheels for Python $here; set PIP"
}

dependency_wheels() {
    local dir="$CACHE/wheels/deps" stamp="$CACHE/wheels/deps.stamp" key
    key="$(sha256sum pyproject.toml | cut -d' ' -f1) extras=$EXTRAS $("$PIP" --version)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then return 0; fi
    say "building dependency wheels for .[$EXTRAS]"
    rm -rf "$dir" "$stamp" "$CACHE/buildtools"
    "$PIP" wheel --disable-pip-version-check -w "$dir" ".[$EXTRAS]" >"$CACHE/wheel.log" 2>&1 \
        || { tail -n 20 "$CACHE/wheel.log" >&2; die "building the dependency wheels failed"; }
    rm -f "$dir"/pilothouse-*.whl
    # What building the project's own wheel needs, so later runs build it offline.
    "$PIP" wheel --quiet --disable-pip-version-check -w "$CACHE/buildtools" \
        "setuptools>=68" wheel
    echo "$key" >"$stamp"
}

# True when no file of the tree changed since the project's wheel was last built. Dot
# paths (.git, .venv, caches, .hypothesis), build/ and byte code never go into the wheel.
project_wheel_current() {
    local stamp="$CACHE/wheels/app.stamp"
    [ -f "$stamp" ] && compgen -G "$CACHE/wheels/app/pilothouse-*.whl" >/dev/null || return 1
    [ -z "$(find . -mindepth 1 \( -name '.?*' -o -path ./build -o -name __pycache__ \
        -o -name '*.egg-info' \) -prune -o -type f -newer "$stamp" -print -quit)" ]
}

project_wheel() {
    local dir="$CACHE/wheels/app" fresh="$CACHE/wheels/app.partial"
    project_wheel_current && return 0
    touch "$CACHE/wheels/app.stamp.next"
    rm -rf "$fresh" build/lib build/bdist.*  # setuptools would pack stale files left there
    # A fixed timestamp makes the wheel byte-identical when the sources are.
    SOURCE_DATE_EPOCH=315532800 "$PIP" wheel --disable-pip-version-check --no-deps \
        --no-index --find-links "$CACHE/buildtools" -w "$fresh" . >"$CACHE/wheel.log" 2>&1 \
        || { tail -n 20 "$CACHE/wheel.log" >&2; die "building the project's wheel failed"; }
    if ! cmp -s "$fresh"/pilothouse-*.whl "$dir"/pilothouse-*.whl 2>/dev/null; then
        rm -rf "$dir"
        mv "$fresh" "$dir"
    fi
    rm -rf "$fresh"
    mv "$CACHE/wheels/app.stamp.next" "$CACHE/wheels/app.stamp"
}

main() {
    command -v "$DOCKER" >/dev/null || die "no docker client ($DOCKER)"
    "$DOCKER" version >/dev/null 2>&1 || die "no Docker engine answers ($DOCKER version)"
    [ -x "$PIP" ] || die "$PIP is missing (make install)"
    mkdir -p "$CACHE/wheels"
    local base
    base=$(choose_base)
    check_python "$base"
    dependency_wheels
    project_wheel
    say "building $IMAGE from $base"
    if ! "$DOCKER" build --build-arg "BASE_IMAGE=$base" --tag "$IMAGE" . \
        >"$CACHE/build.log" 2>&1; then
        tail -n 30 "$CACHE/build.log" >&2
        die "docker build failed; the whole log is in $CACHE/build.log"
    fi
    say "built $IMAGE ($("$DOCKER" image inspect --format '{{.Size}}' "$IMAGE") bytes)"
}

main "$@"
