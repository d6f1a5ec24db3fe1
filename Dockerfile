# One image for every Pilothouse process: `pilothouse hub run`, `pilothouse agent run`,
# `pilothouse serve` (the prediction server the docker plugin starts), `pilothouse up`.
#
# Build it with `make image` (tools/docker_image.sh): the host builds every wheel into
# build/docker/wheels/ first, so this build needs no network, and either base works:
#   - the official image (default, python:3.11-slim: Python in /usr/local), or
#   - a local base made with debootstrap and `docker import` (Debian's /usr/bin/python3),
#     for machines that reach no registry: two images from one tree, BUILD_BASE to install
#     the wheels in (pip's wheels, binutils) and BASE_IMAGE cut down to what runs.
# Both the classic builder and BuildKit read this file (no BuildKit-only syntax).
ARG BASE_IMAGE=python:3.11-slim
ARG BUILD_BASE=${BASE_IMAGE}

# The dependencies, in a stage of their own: the wheels copied here never reach the final
# image, and this stage is rebuilt only when the dependency wheels change. A virtual
# environment keeps our packages off the base's own Python, whichever base it is.
#
# One RUN from installing to compiling: the classic builder commits every step as a layer,
# and committing the installed tree (600 MB) before each of the cuts below cost more than
# the cuts themselves. The steps, in order:
# 1. install the wheels. --no-deps: tools/docker_image.sh gives the complete set pip
#    resolved on the host (the project stage's `pip check` proves it complete).
# 2. remove what only building or testing those packages needs: their test suites,
#    C/Cython sources and headers, static libraries, type stubs, numpy.distutils. Nothing
#    imports them at run time.
# 3. strip the symbol tables of the extension modules (23 MB): only a debugger reads them.
#    The libraries auditwheel vendored into *.libs/ stay as they are: patchelf rewrote their
#    headers, and a stripped copy no longer loads ("ELF load command address/offset not
#    page-aligned"). Skipped where the base has no strip (the official image).
# 4. keep the dependencies as byte code only (34 MB of sources less): each module compiled
#    once beside its source (`compileall -b`, the place a sourceless import reads), then the
#    source removed. Every process still starts from byte code (without it, compiling numpy,
#    scipy and scikit-learn adds 3 s to each start); a traceback inside a dependency shows
#    its file and line but not the line's text. The project's own package keeps its sources
#    (next stage): its settings read their attribute docstrings from them. A file that does
#    not compile (a template, Python 2 syntax) is never imported and keeps its source.
FROM ${BUILD_BASE} AS installer
COPY build/docker/wheels/deps/ /tmp/wheels/
RUN python3 -m venv /opt/pilothouse \
    && /opt/pilothouse/bin/pip install --no-index --no-deps --no-cache-dir \
        --disable-pip-version-check --no-compile /tmp/wheels/*.whl \
    && cd /opt/pilothouse/lib/python3*/site-packages \
    && find . -depth -mindepth 2 -type d -name tests -exec rm -rf {} + \
    && find . -type f \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.pyi' \
        -o -name '*.h' -o -name '*.hpp' -o -name '*.c' -o -name '*.cpp' -o -name '*.a' \
        -o -name '*.tp' \) -delete \
    && rm -rf numpy/distutils numpy/_core/include numpy/f2py/src \
    && if command -v strip >/dev/null; then \
        find /opt/pilothouse/lib -name '*.so*' -type f -not -path '*.libs/*' \
            -exec strip --strip-unneeded {} + ; \
    fi \
    && (/opt/pilothouse/bin/python -m compileall -q -b -j 0 . >/dev/null || true) \
    && /opt/pilothouse/bin/python -c "import pathlib; [p.unlink() for p in \
        pathlib.Path('.').rglob('*.py') if p.with_suffix('.pyc').is_file()]" \
    && find . -name __pycache__ -type d -prune -exec rm -rf {} +

# The project itself, installed under /tmp/project: the final stage copies only that small
# tree, so a code change rebuilds a layer of a few hundred kilobytes. `pip check`, with that
# tree on the path, proves every requirement of the project met by the environment.
FROM installer AS project
COPY build/docker/wheels/app/ /tmp/pilothouse-wheel/
RUN /opt/pilothouse/bin/pip install --no-index --no-deps --no-cache-dir \
        --disable-pip-version-check --root /tmp/project /tmp/pilothouse-wheel/*.whl \
    && PYTHONPATH=$(echo /tmp/project/opt/pilothouse/lib/python3*/site-packages) \
        /opt/pilothouse/bin/pip check --disable-pip-version-check

# The environment as it runs: pip and setuptools served the installation only.
FROM installer AS dependencies
RUN /opt/pilothouse/bin/python -m pip uninstall --yes --quiet --disable-pip-version-check \
        pip setuptools

FROM ${BASE_IMAGE}
# A fixed uid and gid (10001) that no base image uses, so volumes and Kubernetes'
# runAsNonRoot/fsGroup can name them. Written directly: Debian's minimal base has no useradd.
RUN echo 'pilothouse:x:10001:10001:Pilothouse:/var/lib/pilothouse:/usr/sbin/nologin' >> /etc/passwd \
    && echo 'pilothouse:x:10001:' >> /etc/group \
    && mkdir -p /var/lib/pilothouse \
    && chown 10001:10001 /var/lib/pilothouse \
    && chmod 0750 /var/lib/pilothouse
COPY --from=dependencies /opt/pilothouse /opt/pilothouse
COPY --from=project /tmp/project/ /
COPY tools/healthcheck.py /opt/pilothouse/healthcheck.py

# PATH in full: an imported base (docker import) defines none.
# Every process listens on the container's interfaces, keeps its state under the volume,
# and the agent serves /healthz (the HEALTHCHECK below asks it). Flags override all of these.
ENV PATH=/opt/pilothouse/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    container=docker \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/pilothouse \
    PILOTHOUSE_SERVE_HOST=0.0.0.0 \
    PILOTHOUSE_SERVE_STATE_DIR=/var/lib/pilothouse/serve \
    PILOTHOUSE_HUB_LISTEN__HOST=0.0.0.0 \
    PILOTHOUSE_HUB_STATE_DIR=/var/lib/pilothouse/hub \
    PILOTHOUSE_STATE_DIR=/var/lib/pilothouse/agent \
    PILOTHOUSE_HTTP__ENABLED=true \
    PILOTHOUSE_HTTP__HOST=0.0.0.0

USER 10001:10001
WORKDIR /var/lib/pilothouse
VOLUME ["/var/lib/pilothouse"]
# hub API, agent /healthz and /metrics, prediction server
EXPOSE 8700 8701 8702
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/opt/pilothouse/bin/python", "/opt/pilothouse/healthcheck.py"]
ENTRYPOINT ["pilothouse"]
CMD ["--help"]
