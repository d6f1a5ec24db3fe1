#!/usr/bin/env bash
# Build the Pilothouse container image (`make image`; README, "Container image").
#
# 1. Pick the base image. BASE=auto (default) uses the official Python image when the
#    engine has it or can pull it, and otherwise a local base: Debian bookworm made with
#    `debootstrap --variant=minbase` (python3, python3-venv, ca-certificates, binutils) and
#    `docker import`ed twice, for machines that reach no registry: as the build base the
#    wheels are installed in, and cut down to what runs as the runtime base (80 MB instead
#    of 123). BASE=official or BASE=local forces one; any other value is used as the base
#    image reference itself (for building and running).
# 2. Build every wheel on the host (the Docker build then needs no network): the
#    dependencies once per pyproject.toml, the project itself when a file of it changed (a
#    second, byte-identical when nothing changed, so the engine's layer cache still hits).
#    Steps 1 and 2 need nothing of each other and run at the same time: on a machine without
#    the base, the wheels are ready long before debootstrap is.
# 3. `docker build` with --build-arg BUILD_BASE and BASE_IMAGE.
#
# Everything is cached under build/docker/: the two base tarballs (re-imported if the
# engine lost a base image), the wheels. A second run with nothing changed takes seconds.
#
# Every line it prints says how long it has been running, so a slow build shows its slow step.
#
# Environment: IMAGE (pilothouse:latest), BASE (auto), OFFICIAL_BASE (python:3.11-slim),
# LOCAL_BASE (pilothouse-base:bookworm), EXTRAS (sklearn,docker,grpc,postgres), PIP (.venv/bin/pip;
# the python beside it reads pyproject.toml), DEBIAN_MIRROR (http://deb.debian.org/debian),
# PULL_TIMEOUT_S (60), DOCKER (docker).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-pilothouse:latest}
BASE=${BASE:-auto}
OFFICIAL_BASE=${OFFICIAL_BASE:-python:3.11-slim}
LOCAL_BASE=${LOCAL_BASE:-pilothouse-base:bookworm}
EXTRAS=${EXTRAS:-sklearn,docker,grpc,postgres}
PIP=${PIP:-.venv/bin/pip}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PULL_TIMEOUT_S=${PULL_TIMEOUT_S:-60}
DOCKER=${DOCKER:-docker}
CACHE=build/docker
STARTED_US=${EPOCHREALTIME//[!0-9]/}

say() {
    local us=$((${EPOCHREALTIME//[!0-9]/} - STARTED_US))
    printf 'docker_image: [%3d.%ds] %s\n' $((us / 1000000)) $((us / 100000 % 10)) "$*" >&2
}
die() { say "error: $*"; exit 1; }
has_image() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# One debootstrap tree makes both local bases. The build base keeps what installing the
# wheels needs (pip's wheels for the venv, binutils to strip shared libraries); the runtime
# base is the same tree cut down to what a Python server reads at run time (see trim_runtime).
# BASE_RECIPE names the recipe in the tags, so a changed recipe never retags the base images
# another checkout on the same engine builds from.
BASE_RECIPE=3
BUILD_BASE_TAG="${LOCAL_BASE}-${BASE_RECIPE}-build"
RUN_BASE_TAG="${LOCAL_BASE}-${BASE_RECIPE}"
# dpkg's setting for making the tree (make_base_tarballs), left out of the tarballs.
UNSAFE_IO=etc/dpkg/dpkg.cfg.d/pilothouse-build-unsafe-io

make_base_tarballs() {
    local root="$CACHE/rootfs"
    command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
    [ "$(id -u)" = 0 ] || die "debootstrap needs root to make $LOCAL_BASE"
    release_mounts "$root"
    rm -rf "$root"
    say "debootstrap bookworm from $DEBIAN_MIRROR (about a minute)"
    # Expanded now: the trap may run after this function's locals are gone.
    trap "release_mounts '$root'; rm -rf '$root'" EXIT
    # In two stages, so that dpkg, which installs every package of the second, does it
    # without an fsync per file (force-unsafe-io, as the official Debian images have it):
    # the tree is packed into a tarball at the end, and a crash midway means starting again
    # anyway: the stage took 40 s instead of 104 on one loaded machine. The setting stays
    # for the purges of trim_runtime and never reaches a tarball (see pack).
    debootstrap --foreign --variant=minbase \
        --include=python3,python3-venv,ca-certificates,binutils \
        bookworm "$root" "$DEBIAN_MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
        || die "debootstrap (downloading) failed; see $CACHE/debootstrap.log"
    say "debootstrap: downloaded and unpacked; installing"
    mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
    echo force-unsafe-io >"$root/$UNSAFE_IO"
    chroot "$root" /debootstrap/debootstrap --second-stage >>"$CACHE/debootstrap.log" 2>&1 \
        || die "debootstrap (installing) failed; see $CACHE/debootstrap.log"
    release_mounts "$root"
    say "debootstrap: installed"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
        "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
        "$root"/usr/share/info/* "$root"/usr/share/locale/* "$root"/var/log/*
    pack "$root" "$CACHE/base-$BASE_RECIPE-build.tar"
    say "debootstrap: build base packed; cutting the runtime base"
    trim_runtime "$root"
    check_runtime "$root"
    pack "$root" "$CACHE/base-$BASE_RECIPE.tar"
    rm -rf "$root"
    trap - EXIT
}

# What no Pilothouse process runs or reads: the package managers (apt with its TLS stack and
# keys, and the perl, debconf and binutils only packaging and building use), the tools of a
# login system (passwd, login, util-linux, e2fsprogs), the wheels that seed a new venv, and
# glibc's iconv modules (Python's codecs are its own). Purged with dpkg, so the package
# database still tells what the image holds; dpkg itself stays for that.
RUNTIME_PURGE=(apt libapt-pkg6.0 gpgv debian-archive-keyring libgnutls30 libp11-kit0
    libtasn1-6 libnettle8 libhogweed6 libidn2-0 libunistring2 binutils
    binutils-common binutils-x86-64-linux-gnu libbinutils libctf0 libctf-nobfd0 libgprofng0
    libjansson4 libsframe0 e2fsprogs libext2fs2 libss2 logsave adduser passwd login libpam-modules
    libpam-modules-bin libpam-runtime libsemanage2 libsemanage-common libsepol2 util-linux
    python3-pip-whl python3-setuptools-whl)
RUNTIME_PURGE_LAST=(debconf perl-base diffutils)
# The maintainer scripts of the packages above run while perl and debconf are still there
# (and dpkg checks for diff before it starts).

trim_runtime() {
    local root=$1
    purge "$root" "${RUNTIME_PURGE[@]}"
    purge "$root" "${RUNTIME_PURGE_LAST[@]}"
    rm -rf "$root"/usr/lib/x86_64-linux-gnu/gconv "$root"/var/cache/debconf \
        "$root"/var/lib/dpkg/*-old "$root"/var/log/* "$root"/usr/share/doc/* \
        "$root"/usr/share/man/* "$root"/usr/share/locale/*
    # Standard-library packages only tools use (2to3, pydoc's topic index, distutils, gone
    # from Python 3.12 and imported by none of the image's packages): about 4 MB.
    rm -rf "$root"/usr/lib/python3.11/lib2to3 "$root"/usr/lib/python3.11/pydoc_data \
        "$root"/usr/lib/python3.11/distutils
}

purge() {
    local root=$1 installed=() pkg
    shift
    for pkg in "$@"; do
        chroot "$root" dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'installed' \
            && installed+=("$pkg")
    done
    chroot "$root" dpkg --purge --force-remove-essential --force-depends "${installed[@]}" \
        >>"$CACHE/debootstrap.log" 2>&1 \
        || die "purging packages of the runtime base failed; see $CACHE/debootstrap.log"
}

# The cut must not break what stays: every program and library of the base still finds its
# shared libraries, and Python imports every extension module the standard library has.
# Asked of the dynamic loader itself: what ldd (a shell script around it) would ask, for a
# third of the time, and it names a missing library of an executable that ldd's first
# check (--verify) turns into a message on stderr.
check_runtime() {
    local root=$1 broken
    broken=$(chroot "$root" sh -c 'for f in /usr/bin/* /usr/sbin/* /usr/lib/x86_64-linux-gnu/*.so* \
        /usr/lib/python3.11/lib-dynload/*.so; do
            /lib64/ld-linux-x86-64.so.2 --list "$f" 2>/dev/null | grep -q "not found" \
                && echo "$f"; done; true')
    [ -z "$broken" ] || die "the runtime base lost libraries of: $broken"
    chroot "$root" python3 -c 'import ssl, sqlite3, ctypes, lzma, bz2, zlib, hashlib, uuid, decimal, json, zoneinfo, venv; ssl.create_default_context()' \
        || die "the runtime base's Python cannot import its standard library"
}

# The engine gives every container its own /dev, /proc and /sys. dpkg in an image syncs
# its files as it always does (UNSAFE_IO served making the tree only).
pack() {
    tar --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
        --exclude="./$UNSAFE_IO" -C "$1" -cf "$2.partial" .
    mv "$2.partial" "$2"
}

release_mounts() {
    local dir
    for dir in "$1/proc" "$1/sys" "$1/dev/pts"; do
        if mountpoint -q "$dir" 2>/dev/null; then umount "$dir"; fi
    done
}

import_base() {
    local tag=$1 tarball=$2
    has_image "$tag" && return 0
    [ -f "$tarball" ] || make_base_tarballs
    say "importing $tarball as $tag"
    "$DOCKER" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        "$tarball" "$tag" >/dev/null
}

local_base() {
    import_base "$BUILD_BASE_TAG" "$CACHE/base-$BASE_RECIPE-build.tar"
    import_base "$RUN_BASE_TAG" "$CACHE/base-$BASE_RECIPE.tar"
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
                say "$OFFICIAL_BASE is not here and cannot be pulled: using $RUN_BASE_TAG"
                local_base
                echo "$BUILD_BASE_TAG $RUN_BASE_TAG"
            fi ;;
        official) official_base || die "cannot pull $OFFICIAL_BASE (try BASE=local)"
            echo "$OFFICIAL_BASE" ;;
        local) local_base; echo "$BUILD_BASE_TAG $RUN_BASE_TAG" ;;
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

# The project's requirements with EXTRAS, one a line, read from pyproject.toml by the python
# beside PIP (an extra that names the project's own extras is expanded): pip fetches the
# dependencies alone, without building the project's wheel to learn them.
requirements() {
    "$(dirname "$PIP")/python" - "$EXTRAS" <<'PY'
import re, sys, tomllib

with open("pyproject.toml", "rb") as file:
    project = tomllib.load(file)["project"]
optional = project.get("optional-dependencies", {})
itself = re.compile(re.escape(project["name"]) + r"\s*\[([^\]]*)\]\s*")
wanted, seen, found = sys.argv[1].split(","), set(), list(project["dependencies"])
while wanted:
    extra = wanted.pop().strip()
    if not extra or extra in seen:
        continue
    seen.add(extra)
    if extra not in optional:
        sys.exit(f"pyproject.toml has no extra {extra!r}")
    for requirement in optional[extra]:
        if match := itself.fullmatch(requirement):
            wanted.extend(match.group(1).split(","))
        else:
            found.append(requirement)
print("\n".join(found))
PY
}

# Binary wheels wherever one exists (--prefer-binary: an sdist a release newer than the
# newest wheel is not compiled here), from pip's configured indexes and its cache.
dependency_wheels() {
    local dir="$CACHE/wheels/deps" stamp="$CACHE/wheels/deps.stamp" key
    key="$(sha256sum pyproject.toml | cut -d' ' -f1) extras=$EXTRAS $("$PIP" --version)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then return 0; fi
    say "building dependency wheels for .[$EXTRAS]"
    rm -rf "$dir" "$stamp"
    requirements >"$CACHE/wheels/requirements.txt" \
        || die "cannot read the requirements of .[$EXTRAS] from pyproject.toml"
    "$PIP" wheel --disable-pip-version-check --prefer-binary -w "$dir" \
        -r "$CACHE/wheels/requirements.txt" >"$CACHE/deps-wheel.log" 2>&1 \
        || { tail -n 20 "$CACHE/deps-wheel.log" >&2; die "building the dependency wheels failed"; }
    echo "$key" >"$stamp"
    say "dependency wheels ready"
}

# What building the project's wheel needs when pip's environment lacks it, so later runs
# build it offline.
build_tools() {
    [ -d "$CACHE/buildtools" ] && return 0
    rm -rf "$CACHE/buildtools.partial"
    "$PIP" wheel --quiet --disable-pip-version-check -w "$CACHE/buildtools.partial" \
        "setuptools>=68" wheel || die "cannot fetch the build backend (setuptools, wheel)"
    mv "$CACHE/buildtools.partial" "$CACHE/buildtools"
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
    # A fixed timestamp makes the wheel byte-identical when the sources are. Built with the
    # backend of pip's own environment when it has the one pyproject.toml asks for (the venv
    # of `make install` has: its dev extra names setuptools and wheel): the same wheel, byte
    # for byte, without making an isolated build environment first (5 s instead of 15 on a
    # loaded machine). Otherwise in an isolated one, from build/docker/buildtools.
    if ! SOURCE_DATE_EPOCH=315532800 "$PIP" wheel --disable-pip-version-check --no-deps \
        --no-index --no-build-isolation --check-build-dependencies -w "$fresh" . \
        >"$CACHE/wheel.log" 2>&1; then
        rm -rf "$fresh" build/lib build/bdist.*
        build_tools
        SOURCE_DATE_EPOCH=315532800 "$PIP" wheel --disable-pip-version-check --no-deps \
            --no-index --find-links "$CACHE/buildtools" -w "$fresh" . >"$CACHE/wheel.log" 2>&1 \
            || { tail -n 20 "$CACHE/wheel.log" >&2; die "building the project's wheel failed"; }
    fi
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
    local bases build_base base chosen="$CACHE/bases.$$" job
    # The base (a minute of debootstrap where there is none) and the wheels at the same time.
    # Whatever happens, this script returns only once the base's job has: it never leaves a
    # debootstrap running (or its mounts) behind it, and a base it made stays cached.
    choose_base >"$chosen" &
    job=$!
    trap "wait $job 2>/dev/null; rm -f '$chosen'" EXIT
    dependency_wheels
    project_wheel
    say "wheels ready"
    wait "$job" || die "no base image to build from (see above)"
    bases=$(cat "$chosen")
    build_base=${bases% *}  # where the wheels are installed; the same as base unless local
    base=${bases#* }
    check_python "$base"
    say "building $IMAGE from $base (steps in $CACHE/build.log)"
    if ! "$DOCKER" build --build-arg "BUILD_BASE=$build_base" --build-arg "BASE_IMAGE=$base" \
        --tag "$IMAGE" . \
        >"$CACHE/build.log" 2>&1; then
        tail -n 30 "$CACHE/build.log" >&2
        die "docker build failed; the whole log is in $CACHE/build.log"
    fi
    say "built $IMAGE ($("$DOCKER" image inspect --format '{{.Size}}' "$IMAGE") bytes)"
}

# Sourced (tools/postgres_image.sh reuses the bases): define only.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
