"""Hostile ``model.yaml``: a YAML alias bomb and non-scalar samples are refused, and fast.

Issue 9, item 3: a 2 kB package whose manifest nests 7 levels of 10 aliases in
``samples`` was accepted (201 after 4 s), stored as a 24.7 MB manifest, and
slowed every package listing. The manifest parser (shared by the hub and the
prediction server) now refuses anchors and aliases before building anything,
and sample values must be scalars.
"""

from __future__ import annotations

import time

import pytest

from pilothouse.modelpkg.errors import ManifestError
from pilothouse.modelpkg.manifest import parse_manifest
from tests.hub.support import V1, Running, answer, ok, package_bytes, rows, upload

pytestmark = pytest.mark.anyio

HEAD = (
    "name: bomb\nversion: '1'\nformat: sklearn\nartifact: model.joblib\n"
    "target: {type: classification, name: label, classes: [a, b]}\nfeatures: [{name: x}]\n"
)


def alias_bomb(levels: int = 7, fanout: int = 10) -> str:
    """A manifest whose samples expand to ``fanout ** levels`` strings if aliases are followed."""
    lines = [
        HEAD.rstrip("\n"),
        "samples:",
        "  - x: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]",
    ]
    for level in range(1, levels):
        refs = ", ".join(f"*l{level - 1}" for _ in range(fanout))
        lines.append(f"  - x: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_the_bomb_is_small() -> None:
    text = alias_bomb()
    assert len(text.encode()) < 3000 and text.count("*l5") == 10


def test_the_parser_refuses_anchors_and_aliases_before_expanding_them() -> None:
    began = time.perf_counter()
    with pytest.raises(ManifestError) as refused:
        parse_manifest(alias_bomb().encode())
    assert time.perf_counter() - began < 0.5
    assert "anchors and aliases" in str(refused.value) and "line 8" in str(refused.value)


def test_a_single_harmless_alias_is_refused_too() -> None:
    with pytest.raises(ManifestError, match="anchors and aliases"):
        parse_manifest((HEAD + "description: &d text\nsamples: [{x: 1}]\n").encode())


@pytest.mark.parametrize(
    ("sample", "problem"),
    [
        ("{x: [1, 2]}", "samples.0.x: must be a number, string, boolean or null, not a list"),
        ("{x: {y: 1}}", "samples.0.x: must be a number, string, boolean or null, not a mapping"),
        ("{x: 2026-01-01}", "not a date (quote it to make it a string)"),
        ("{x: 99999999999999999999999}", "samples.0.x: 99999999999999999999999 is outside"),
    ],
)
def test_sample_values_must_be_scalars(sample: str, problem: str) -> None:
    with pytest.raises(ManifestError) as refused:
        parse_manifest((HEAD + f"samples: [{sample}]\n").encode())
    assert problem in str(refused.value)


def test_scalar_samples_still_parse() -> None:
    manifest = parse_manifest((HEAD + "samples: [{x: 1.5}, {x: null}, {x: 3}]\n").encode())
    assert [s["x"] for s in manifest.samples] == [1.5, None, 3]


async def test_the_hub_refuses_the_bomb_quickly_naming_the_problem(hub: Running) -> None:
    archive = package_bytes(manifest=alias_bomb())
    assert len(archive) < 3000
    began = time.perf_counter()
    status, body = await answer(upload(hub.admin, archive))
    took = time.perf_counter() - began
    assert status == 422 and body["error"] == "package_rejected", body
    assert "anchors and aliases are not allowed" in body["message"], body
    assert took < 2.0, took
    assert await rows(hub, "model_packages") == 0
    listed = await ok(hub.admin.get(f"{V1}/model-packages"))
    assert listed["items"] == []


async def test_the_hub_refuses_a_sample_too_large_for_its_database(hub: Running) -> None:
    """A 70-bit integer in a sample could not be stored as JSON: 422, not 500."""
    manifest = HEAD + "samples: [{x: 1180591620717411303424}]\n"
    status, body = await answer(upload(hub.admin, package_bytes(manifest=manifest)))
    assert status == 422 and "outside the signed 64-bit range" in body["message"], body
