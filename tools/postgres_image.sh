#!/usr/bin/env bash
# Build the PostgreSQL image of the compose stack's `postgres` profile (`make demo
# PROFILE=postgres` runs it; README, "Run it in containers").
#
# No registry is reachable here, so the image is built FROM the project's local
# debootstrap bases, the ones tools/docker_image.sh makes (and this script makes or
# re-imports the same way when the engine lacks them): Debian's postgresql-15 is installed
# from the Debian mirror in the build base and only what the server runs is copied onto the
# runtime base (tools/postgres/Dockerfile). The engine's layer cache keeps the result: a
# second run with nothing changed takes seconds.
#
# Environment: POSTGRES_IMAGE (pilothouse-postgres:15), DEBIAN_MIRROR
# (http://deb.debian.org/debian), DEBIAN_SECURITY_MIRROR (http://deb.debian.org/debian-security),
# LOCAL_BASE (pilothouse-base:bookworm), DOCKER (docker).
set -euo pipefail
# shellcheck source=tools/docker_image.sh
source "$(dirname "$0")/docker_image.sh"  # the base images; its cd puts us at the root

POSTGRES_IMAGE=${POSTGRES_IMAGE:-pilothouse-postgres:15}
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

postgres_main() {
    command -v "$DOCKER" >/dev/null || die "no docker client ($DOCKER)"
    "$DOCKER" version >/dev/null 2>&1 || die "no Docker engine answers ($DOCKER version)"
    mkdir -p "$CACHE"
    local_base
    say "building $POSTGRES_IMAGE from $RUN_BASE_TAG"
    if ! "$DOCKER" build --build-arg "BUILD_BASE=$BUILD_BASE_TAG" \
        --build-arg "BASE_IMAGE=$RUN_BASE_TAG" --build-arg "DEBIAN_MIRROR=$DEBIAN_MIRROR" \
        --build-arg "DEBIAN_SECURITY_MIRROR=$DEBIAN_SECURITY_MIRROR" \
        --tag "$POSTGRES_IMAGE" tools/postgres >"$CACHE/postgres-build.log" 2>&1; then
        tail -n 30 "$CACHE/postgres-build.log" >&2
        die "docker build failed; the whole log is in $CACHE/postgres-build.log"
    fi
    say "built $POSTGRES_IMAGE ($("$DOCKER" image inspect --format '{{.Size}}' "$POSTGRES_IMAGE") bytes)"
}

postgres_main "$@"
