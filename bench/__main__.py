"""Run the benchmarks: ``python -m bench [NAME[,NAME...]] [ARGS...]``.

Every module ``bench/<name>.py`` with a ``main(argv)`` function is a benchmark. With no
name, all of them run in turn (each with its defaults); with names, only those, and the
remaining arguments go to each selected module's ``main``. ``python -m bench --list``
prints the names.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).resolve().parent
    names = []
    for info in pkgutil.iter_modules([str(here)]):
        if info.name.startswith("_") or info.ispkg:
            continue
        module = importlib.import_module(f"bench.{info.name}")
        if callable(getattr(module, "main", None)):
            names.append(info.name)
    return sorted(names)


def run(argv: list[str]) -> int:
    names = available()
    if argv and argv[0] in ("-l", "--list"):
        print("\n".join(names))
        return 0
    if argv and argv[0] in ("-h", "--help") :
        print(__doc__.strip())
        print("\nbenchmarks: " + ", ".join(names))
        return 0
    selected = names
    if argv and not argv[0].startswith("-"):
        selected = [n.strip() for n in argv[0].split(",") if n.strip()]
        argv = argv[1:]
        unknown = sorted(set(selected) - set(names))
        if unknown:
            print(f"unknown benchmark(s) {unknown}; available: {names}", file=sys.stderr)
            return 2
    status = 0
    for name in selected:
        print(f"=== bench.{name} ===", flush=True)
        rc = importlib.import_module(f"bench.{name}").main(list(argv))
        status = status or int(rc or 0)
    return status


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
