"""The house rules a reviewer would otherwise check by hand: small rooms, imports one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("daemon", "hw", "config")
MAX_LINES = 400


def _modules(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Top-level package names a module imports, wherever in the module the import sits."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", _modules(*PRODUCT), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_room_is_small(path: Path) -> None:
    lines = path.read_text().count("\n")
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines (at most {MAX_LINES})"


@pytest.mark.parametrize(("package", "forbidden"), [("hw", ("daemon",)),
                                                    ("config", ("daemon", "hw"))])
def test_dependencies_point_one_way(package: str, forbidden: tuple[str, ...]) -> None:
    wrong = {str(path.relative_to(ROOT)): sorted(name for name in _imports(path)
                                                 if name.split(".")[0] in forbidden)
             for path in _modules(package)}
    assert not {k: v for k, v in wrong.items() if v}


def test_the_daemon_never_imports_its_dev_kit() -> None:
    """The emulator, demo and sound rig ship as `pttd emulator`/`pttd demo`, loaded by name from
    the command line only; nothing the daemon runs on imports them."""
    devkit = ROOT / "daemon" / "devkit"
    users = [str(path.relative_to(ROOT)) for path in _modules("daemon")
             if devkit not in path.parents
             and any(name.startswith("daemon.devkit") for name in _imports(path))]
    assert users == []
