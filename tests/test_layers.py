"""The package's layering holds: each place imports only places below it, and nothing
outside ``web`` pulls in Flask (a batch job or an evaluation runs the engine without it)."""
from __future__ import annotations

import ast
import subprocess
import sys

from reconcile.config import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "src" / "reconcile"
#: bottom to top; a place may import any place at its own rank or below
LAYERS = [
    {"config", "normalize", "names", "references"},
    {"store"},
    {"scoring"},
    {"engine"},
    {"review"},
    {"training"},
    {"batch"},
    {"synth"},
    {"ingest", "export"},
    {"web", "cli"},
]
RANK = {place: rank for rank, places in enumerate(LAYERS) for place in places}


def _module(path) -> tuple[str, bool]:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def _imports(path) -> list[str]:
    """Absolute names of the reconcile modules (or their packages) ``path`` imports."""
    module, is_package = _module(path)
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                found += [target] if node.module else [f"{target}.{alias.name}" for alias in node.names]
            elif (node.module or "").startswith("reconcile"):
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("reconcile")]
    return found


def _place(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _sources():
    return [p for p in PACKAGE.rglob("*.py") if "migrations" not in p.relative_to(PACKAGE).parts]


def test_every_place_has_a_layer() -> None:
    places = {_place(_module(p)[0]) for p in _sources()} - {None}
    assert places <= set(RANK), f"add {places - set(RANK)} to LAYERS"


def test_no_place_imports_a_place_above_it() -> None:
    upward = []
    for path in _sources():
        source = _place(_module(path)[0])
        for target in _imports(path):
            target_place = _place(target)
            if source and target_place and RANK[target_place] > RANK[source]:
                upward.append(f"{path.relative_to(PACKAGE)} imports {target}")
    assert not upward, "\n".join(upward)


def test_the_engine_and_the_offline_tools_do_not_import_flask() -> None:
    modules = sorted(
        _module(p)[0] for p in _sources() if _place(_module(p)[0]) not in {"web", None}
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print('flask' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
