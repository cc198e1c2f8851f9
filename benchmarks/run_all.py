"""Run every benchmark in this folder, one after another: ``python -m benchmarks.run_all``.

Benchmarks are discovered, not listed: any module here with a ``main()`` is run with its
defaults (``main([])`` when it takes an argument list, so this command's own arguments
never leak into it). A benchmark that fails is reported and the others still run; the
exit status is non-zero if any failed.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIP = {"__init__", "run_all"}


def discover() -> list[str]:
    """Names of the benchmark modules, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name not in SKIP)


def run(name: str) -> bool:
    module = importlib.import_module(f"benchmarks.{name}")
    main: Callable[..., object] | None = getattr(module, "main", None)
    if main is None:
        print(f"benchmarks.{name} has no main(); skipped")
        return True
    print(f"\n=== benchmarks.{name} ===", flush=True)
    started = time.perf_counter()
    try:
        if inspect.signature(main).parameters:
            main([])
        else:
            main()
    except SystemExit as exc:
        if exc.code not in (0, None):
            print(f"=== benchmarks.{name} exited with {exc.code} ===", flush=True)
            return False
    except Exception:
        traceback.print_exc()
        print(f"=== benchmarks.{name} FAILED ===", flush=True)
        return False
    print(f"=== benchmarks.{name}: {time.perf_counter() - started:.1f} s ===", flush=True)
    return True


def main() -> None:
    names = sys.argv[1:] or discover()
    failed = [name for name in names if not run(name)]
    if failed:
        print(f"failed: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
