"""The core layer ships bytecode Lambda can use as is (`make build` checks the built layer with
`problems`; the bench measures a deployed cold start on `assemble`'s copy)."""

from __future__ import annotations

import py_compile
from pathlib import Path

import pytest

from gatekeeper_ops import layer_bytecode

UNCHECKED = py_compile.PycInvalidationMode.UNCHECKED_HASH


def _module(directory: Path, name: str, source: str = "x = 1\n") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    return path


def test_unchecked_hash_bytecode_for_every_module_passes(tmp_path: Path) -> None:
    for name in ("a.py", "pkg/__init__.py", "pkg/b.py"):
        py_compile.compile(str(_module(tmp_path, name)), invalidation_mode=UNCHECKED)
    assert layer_bytecode.problems(tmp_path) == []
    assert layer_bytecode.main([str(tmp_path)]) == 0


@pytest.mark.parametrize(
    ("spoil", "complaint"),
    [
        (lambda path: None, "no bytecode"),
        (lambda path: py_compile.compile(str(path)), "checked against file times"),
        (
            lambda path: py_compile.compile(
                str(path), invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH
            ),
            "checked against file times or source",
        ),
        (
            lambda path: (
                py_compile.compile(str(path), invalidation_mode=UNCHECKED),
                path.write_text("x = 2\n"),
            ),
            "another version of the source",
        ),
    ],
    ids=["missing", "timestamp", "checked-hash", "stale"],
)
def test_bytecode_lambda_would_not_use_is_reported(tmp_path: Path, spoil, complaint: str) -> None:  # type: ignore[no-untyped-def]
    good = _module(tmp_path, "good.py")
    py_compile.compile(str(good), invalidation_mode=UNCHECKED)
    spoil(_module(tmp_path, "pkg/bad.py"))
    found = layer_bytecode.problems(tmp_path)
    assert len(found) == 1
    assert found[0].startswith("pkg/bad.py: ")
    assert complaint in found[0]
    assert layer_bytecode.main([str(tmp_path)]) == 1


def test_bytecode_of_another_python_is_reported(tmp_path: Path) -> None:
    path = _module(tmp_path, "m.py")
    compiled = Path(py_compile.compile(str(path), invalidation_mode=UNCHECKED))
    compiled.write_bytes(b"\x00\x00\r\n" + compiled.read_bytes()[4:])
    assert layer_bytecode.problems(tmp_path) == ["m.py: bytecode for another Python"]


def test_a_missing_layer_directory_fails(tmp_path: Path) -> None:
    assert layer_bytecode.main([str(tmp_path / "nope")]) == 1


def test_the_assembled_layer_holds_the_pinned_distributions_and_the_core(tmp_path: Path) -> None:
    pinned = layer_bytecode.pinned_distributions()
    assert {"pydantic", "aws-lambda-powertools"} <= set(pinned)
    assert not {"boto3", "botocore"} & set(pinned)  # the runtime's own
    bare = layer_bytecode.assemble(tmp_path / "bare", bytecode=False)
    assert (bare / "gatekeeper" / "wiring" / "services.py").is_file()
    assert (bare / "pydantic" / "main.py").is_file()
    assert not list(bare.rglob("__pycache__"))
    shipped = layer_bytecode.assemble(tmp_path / "shipped", bytecode=True)
    assert layer_bytecode.problems(shipped) == []


def test_the_layer_build_compiles_unchecked_hash_bytecode() -> None:
    """What `sam build` runs (the built layer itself is checked by `make build`)."""
    makefile = (layer_bytecode.LAYER / "Makefile").read_text()
    assert "build-CoreLayer:" in makefile
    assert "-m compileall" in makefile
    assert "--invalidation-mode unchecked-hash" in makefile
