"""Model packages: upload, idempotence by content, read, download with ETag; hostile archives."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Callable

import pytest

from tests.hub.support import (
    V1,
    Running,
    answer,
    member,
    ok,
    package_bytes,
    rows,
    running,
    settings,
    tar_gz,
    upload,
)

pytestmark = pytest.mark.anyio


async def test_upload_read_and_list(hub: Running) -> None:
    data = package_bytes("iris", "2.1")
    created = await ok(upload(hub.admin, data), 201)
    sha = hashlib.sha256(data).hexdigest()
    assert created["sha256"] == sha and created["size"] == len(data)
    assert (created["name"], created["version"], created["format"]) == ("iris", "2.1", "sklearn")
    assert created["manifest"]["artifact"] == "model.joblib"
    assert await ok(hub.admin.get(f"{V1}/model-packages/{created['id']}")) == created
    listed = await ok(hub.admin.get(f"{V1}/model-packages"))
    assert [p["id"] for p in listed["items"]] == [created["id"]]
    blob = hub.settings.state_dir / "blobs" / sha[:2] / sha
    assert blob.read_bytes() == data


async def test_same_bytes_again_answer_200_with_the_stored_package(hub: Running) -> None:
    data = package_bytes()
    first = await ok(upload(hub.admin, data), 201)
    again = await ok(upload(hub.admin, data), 200)
    assert again == first
    assert await rows(hub, "model_packages") == 1


async def test_same_name_and_version_with_other_bytes_is_a_conflict(hub: Running) -> None:
    await ok(upload(hub.admin, package_bytes("iris", "1")), 201)
    other = package_bytes("iris", "1", extra=[(member("notes.txt"), b"different")])
    status, body = await answer(upload(hub.admin, other))
    assert status == 409 and body["error"] == "conflict"
    assert await rows(hub, "model_packages") == 1
    assert _blobs(hub) == 1


async def test_archive_streams_with_sha256_etag_and_304(hub: Running) -> None:
    data = package_bytes()
    pkg = await ok(upload(hub.admin, data), 201)
    url = f"{V1}/model-packages/{pkg['id']}/archive"
    async with hub.admin.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["ETag"] == f'"{pkg["sha256"]}"'
        assert resp.headers["Content-Type"] == "application/gzip"
        assert await resp.read() == data
    async with hub.admin.get(url, headers={"If-None-Match": f'"{pkg["sha256"]}"'}) as resp:
        assert resp.status == 304 and await resp.read() == b""
    async with hub.admin.get(url, headers={"If-None-Match": '"other"'}) as resp:
        assert resp.status == 200


async def test_agents_may_read_packages_but_not_upload(hub: Running) -> None:
    pe = await hub.pe()
    agent = await hub.agent(pe["id"])
    pkg = await hub.package()
    await ok(agent.get(f"{V1}/model-packages/{pkg['id']}/archive"))
    await ok(agent.get(f"{V1}/model-packages"))
    status, _ = await answer(upload(agent, package_bytes("other", "1")))
    assert status == 403


def _bomb() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        manifest = b"name: bomb\nversion: '1'\nformat: onnx\n"
        info = member("model.yaml")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        for i in range(3):  # each under the member limit, together over the total
            zeros = member(f"zeros{i}.bin")
            zeros.size = 30 * 1024 * 1024
            tar.addfile(zeros, io.BytesIO(bytes(zeros.size)))
    return gzip.compress(raw.getvalue(), compresslevel=9)


HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    "absolute path": (lambda: tar_gz([(member("/etc/passwd"), b"x")]), "absolute"),
    "dot-dot": (lambda: package_bytes(extra=[(member("../escape.txt"), b"x")]), "'..'"),
    "nested dot-dot": (lambda: package_bytes(extra=[(member("a/../../b"), b"x")]), "'..'"),
    "symlink": (
        lambda: package_bytes(
            extra=[(member("link", tarfile.SYMTYPE, linkname="/etc/passwd"), None)]
        ),
        "links",
    ),
    "hardlink": (
        lambda: package_bytes(
            extra=[(member("hard", tarfile.LNKTYPE, linkname="model.yaml"), None)]
        ),
        "links",
    ),
    "device": (
        lambda: package_bytes(extra=[(member("dev", tarfile.CHRTYPE), None)]),
        "device file",
    ),
    "fifo": (lambda: package_bytes(extra=[(member("fifo", tarfile.FIFOTYPE), None)]), "FIFO"),
    "too many files": (
        lambda: package_bytes(extra=[(member(f"f{i}"), b"") for i in range(20)]),
        "number of members exceeds the limit of 10",
    ),
    "oversized member": (
        lambda: package_bytes(extra=[(member("big"), bytes(70 * 1024))]),
        "member size exceeds the limit",
    ),
    "duplicate entry": (
        lambda: package_bytes(extra=[(member("model.joblib"), b"again")]),
        "more than once",
    ),
    "gzip bomb": (_bomb, "total uncompressed size exceeds the limit"),
    "not gzip": (lambda: b"PK\x03\x04 this is a zip file", "not a gzip"),
    "corrupt gzip": (lambda: package_bytes()[:40], "truncated or corrupt"),
    "gzip but not tar": (lambda: gzip.compress(b"hello " * 1000), "not a valid tar"),
    "missing manifest": (lambda: package_bytes(manifest=""), "no model.yaml"),
    "manifest not yaml": (lambda: package_bytes(manifest="name: [unclosed"), "not valid YAML"),
    "manifest not a mapping": (
        lambda: package_bytes(manifest="- a\n- b\n"),
        "expected a mapping at the top level",
    ),
    "manifest bad format": (
        lambda: package_bytes(manifest="name: m\nversion: '1'\nformat: pickle\n"),
        "format: got 'pickle'",
    ),
    "manifest missing version": (
        lambda: package_bytes(manifest="name: m\nformat: onnx\n"),
        "version: required",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_hostile_or_invalid_archive_is_refused_and_nothing_stored(
    case: str, tmp_path: object, anyio_backend: str
) -> None:
    make, expected = HOSTILE[case]
    data = make()
    limits = {
        "max_package_files": 10,
        "max_member_bytes": 64 * 1024 * 1024 if case == "gzip bomb" else 64 * 1024,
        "max_unpacked_bytes": 64 * 1024 * 1024,
    }
    async with running(settings(tmp_path, limits=limits)) as hub:
        status, body = await answer(upload(hub.admin, data))
        assert status == 422, body
        assert body["error"] == "package_rejected"
        assert expected in body["message"] or any(expected in f["field"] for f in body["fields"])
        assert await rows(hub, "model_packages") == 0
        assert _blobs(hub) == 0


async def test_oversized_upload_is_413_and_nothing_stored(
    tmp_path: object, anyio_backend: str
) -> None:
    async with running(settings(tmp_path, limits={"max_package_bytes": 1024})) as hub:
        status, body = await answer(upload(hub.admin, bytes(4096)))
        assert status == 413 and body["error"] == "payload_too_large"
        assert _blobs(hub) == 0


async def test_wrong_content_type_is_415(hub: Running) -> None:
    status, body = await answer(upload(hub.admin, package_bytes(), "application/json"))
    assert status == 415 and body["error"] == "unsupported_media_type"


def _blobs(hub: Running) -> int:
    root = hub.settings.state_dir / "blobs"
    return sum(1 for p in root.rglob("*") if p.is_file())
