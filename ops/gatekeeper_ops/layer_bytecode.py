"""The core layer as Lambda runs it: checked for bytecode after `sam build`, assembled for the bench.

Lambda mounts a layer read-only at /opt, so a module shipped without bytecode is compiled on every
cold start; layers/core/Makefile ships unchecked-hash bytecode, `problems` checks it (`make build`)
and `assemble` builds the layer as deployed for `make bench`. See docs/development.md.
"""

from __future__ import annotations

import compileall
import importlib.metadata
import importlib.util
import py_compile
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "core"
_PIN = re.compile(r"^([A-Za-z0-9_.-]+)==")
_UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, source not checked


def problems(directory: Path) -> list[str]:
    """Each module under `directory` whose bytecode is missing, for another Python, or stale."""
    found = []
    for source in sorted(directory.rglob("*.py")):
        cached = Path(importlib.util.cache_from_source(str(source)))
        if not cached.is_file():
            found.append(f"{source.relative_to(directory)}: no bytecode ({cached.name})")
            continue
        header = cached.read_bytes()[:16]
        flags = int.from_bytes(header[4:8], "little")
        if header[:4] != importlib.util.MAGIC_NUMBER:
            found.append(f"{source.relative_to(directory)}: bytecode for another Python")
        elif flags != _UNCHECKED_HASH:
            found.append(f"{source.relative_to(directory)}: bytecode checked against file times or source")
        elif header[8:16] != importlib.util.source_hash(source.read_bytes()):
            found.append(f"{source.relative_to(directory)}: bytecode of another version of the source")
    return found


def pinned_distributions(requirements: Path = LAYER / "requirements.txt") -> list[str]:
    lines = requirements.read_text().splitlines()
    return [match.group(1) for line in lines if (match := _PIN.match(line.strip()))]


def assemble(target: Path, bytecode: bool) -> Path:
    """The layer's python/ directory in `target`, from this environment's installed distributions."""
    python = target / "python"
    for name in pinned_distributions():
        distribution = importlib.metadata.distribution(name)
        for file in distribution.files or ():
            if file.parts[0] == ".." or "__pycache__" in file.parts:
                continue  # console scripts outside site-packages; the environment's own bytecode
            destination = python / file
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(str(distribution.locate_file(file))), destination)
    shutil.copytree(LAYER / "gatekeeper", python / "gatekeeper", ignore=shutil.ignore_patterns("__pycache__"))
    if bytecode:
        compileall.compile_dir(
            python, quiet=1, force=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
        )
    return python


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m gatekeeper_ops.layer_bytecode <the built layer's python directory>")
        return 2
    directory = Path(argv[0])
    if not directory.is_dir():
        print(f"{directory} is not a directory: run sam build first")
        return 1
    found = problems(directory)
    modules = sum(1 for _ in directory.rglob("*.py"))
    if found:
        print(f"{len(found)} of {modules} modules in {directory} lack usable bytecode, e.g.:")
        print("\n".join(f"  {line}" for line in found[:10]))
        print("Lambda would compile them on every cold start: see layers/core/Makefile.")
        return 1
    print(
        f"layer bytecode OK: {modules} modules in {directory}, unchecked-hash, {sys.implementation.cache_tag}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
