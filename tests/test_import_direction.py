"""Imports run one way: the core imports no stage, a stage imports only stages that run before it.

Order: core (``cip``) < pipelines.generate < pipelines.ingest < pipelines.identity <
pipelines.profiles < features < training < serving (and batch scoring under ``pipelines/``) <
the door (``cli``). The generator and the first three stages know only the core. Read from the
source with ``ast`` (every ``import``, also inside functions); tests and benchmarks may import
anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Package -> rank in the order the stages run.
RANKS: dict[str, int] = {
    "cip": 0,
    "pipelines.generate": 1,
    "pipelines.ingest": 2,
    "pipelines.identity": 3,
    "pipelines.profiles": 4,
    "features": 5,
    "training": 6,
    "serving": 7,
    "pipelines.batch": 7,
    "cli": 8,
}
#: Packages that may import nothing but the core.
CORE_ONLY = {"pipelines.generate", "pipelines.ingest", "pipelines.identity", "pipelines.profiles"}
TOP_LEVEL = {name.split(".")[0] for name in RANKS}


def package_of(module: str) -> str | None:
    """The ranked package a dotted module belongs to (``None`` for third-party modules)."""
    parts = module.split(".")
    if parts[0] not in TOP_LEVEL:
        return None
    if parts[0] == "pipelines":
        if len(parts) == 1:
            return "pipelines"
        name = ".".join(parts[:2])
        assert name in RANKS, f"{module}: give pipelines/{parts[1]}/ a rank in {__file__}"
        return name
    return parts[0]


def imports_of(path: Path, module: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")[: -node.level]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def source_modules() -> list[tuple[str, Path]]:
    out = []
    for top in sorted(TOP_LEVEL):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            out.append((".".join(p for p in rel.parts if p != "__init__"), path))
    return out


def violations() -> list[str]:
    bad = []
    for module, path in source_modules():
        own = package_of(module)
        if own == "pipelines":  # pipelines/__init__.py
            own = "cip"
        for target in imports_of(path, module):
            other = package_of(target)
            if other in (None, own) or (other == "pipelines" and target == "pipelines"):
                continue
            if other == "pipelines":
                continue  # `from pipelines import x` is resolved through its `pipelines.x` entry
            if RANKS[other] > RANKS[own]:
                bad.append(f"{module} imports {target}: {other} runs after {own}")
            elif own in CORE_ONLY and other != "cip":
                bad.append(f"{module} imports {target}: {own} may import only the core")
    return sorted(bad)


def test_core_imports_no_stage_and_stages_import_only_earlier_ones():
    assert violations() == []


def test_the_check_sees_a_backward_import(tmp_path, monkeypatch):
    fake = tmp_path / "pipelines" / "profiles"
    fake.mkdir(parents=True)
    (fake / "x.py").write_text("def f():\n    from features.snapshots import compute_snapshots\n")
    (tmp_path / "cip").mkdir()
    (tmp_path / "cip" / "y.py").write_text("from cli.settings import Settings\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    found = violations()
    assert "cip.y imports cli.settings: cli runs after cip" in found
    assert "pipelines.profiles.x imports features.snapshots: features runs after pipelines.profiles" in found
