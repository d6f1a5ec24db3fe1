"""The web UI as the hub serves it: the page at ``/``, its files under ``/ui/``, nothing else."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import pytest
from blockbuster import blockbuster_ctx

from pilothouse.hub.ui import assets
from tests.hub.support import V1, Running, next_message, running, settings

pytestmark = pytest.mark.anyio

IMPORT = re.compile(r"""(?:from\s+|import\s*\(\s*)["'](\.{1,2}/[^"']+)["']""")


async def test_the_page_is_public_with_a_strict_policy(hub: Running) -> None:
    anonymous = hub.session(None)
    async with anonymous.get("/") as page:
        assert page.status == 200
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        policy = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy
        html = await page.text()
    assert '<script type="module" src="/ui/js/main.js">' in html
    async with anonymous.get("/ui/js/main.js") as script:
        assert script.status == 200
        assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert script.headers["X-Content-Type-Options"] == "nosniff"
        etag = script.headers["ETag"]
    async with anonymous.get("/ui/js/main.js", headers={"If-None-Match": etag}) as again:
        assert again.status == 304
    async with anonymous.get("/ui/app.css") as style:
        assert style.headers["Content-Type"] == "text/css; charset=utf-8"


@pytest.mark.parametrize(
    "path", ["/ui/nope.js", "/ui/%2e%2e/assets.py", "/ui/..%2fassets.py", "/ui/js/", "/ui/js"]
)
async def test_nothing_outside_the_ui_is_served(hub: Running, path: str) -> None:
    async with hub.session(None).get(path) as resp:
        assert resp.status == 404
        assert resp.content_type == "application/json"


def test_every_module_the_ui_imports_is_there() -> None:
    files = assets.load()
    for name, asset in files.items():
        if not name.endswith(".js"):
            continue
        for target in IMPORT.findall(asset.body.decode()):
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
            assert resolved in files, f"{name} imports {target}, which is not in the UI"
    html = files[assets.INDEX].body.decode()
    for ref in re.findall(r'(?:src|href)="/ui/([^"]+)"', html):
        assert ref in files, ref


async def test_serving_the_ui_and_its_stream_never_blocks_the_loop(
    tmp_path: Path, anyio_backend: str
) -> None:
    with blockbuster_ctx(["hub"]):
        async with running(settings(tmp_path)) as hub:
            for path in ("/", "/ui/js/main.js", "/ui/app.css"):
                async with hub.session(None).get(path) as resp:
                    assert resp.status == 200
            async with hub.admin.get(f"{V1}/events/stream", params={"backlog": "5"}) as stream:
                await next_message(stream)
                assert (await next_message(stream)).event == "snapshot"


@pytest.mark.backends("sqlite")
def test_the_vendored_chart_library_is_the_pinned_one() -> None:
    """uPlot's files are those of the pinned npm tarball, with its MIT licence beside them."""
    from pilothouse.hub.ui import vendoring

    for name, digest in vendoring.FILES.values():
        assert vendoring.sha256((vendoring.TARGET / name).read_bytes()) == digest, name
    licence = (vendoring.TARGET / "LICENSE").read_text()
    assert licence.startswith("The MIT License") and vendoring.LICENSE == "MIT"
    assert f"(v{vendoring.VERSION})" in (vendoring.TARGET / "uPlot.esm.js").read_text()[:400]
