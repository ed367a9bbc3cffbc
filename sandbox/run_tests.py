"""Run the project's tests with the standard library alone: `python3 run_tests.py`.

Every function named ``test_*`` in ``tests/test_*.py`` is called; a test passes when it returns without
raising. pytest runs the same files too (`python3 -m pytest -q`), but is not needed.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path


def main() -> int:
    root = Path(__file__).resolve().parent
    sys.path.insert(0, str(root))
    passed, failed = 0, []
    for path in sorted((root / "tests").glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"tests.{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception:
            failed.append((path.name, traceback.format_exc()))
            continue
        for name in sorted(n for n in vars(module) if n.startswith("test_")):
            test = getattr(module, name)
            if not callable(test):
                continue
            try:
                test()
            except Exception:
                failed.append((f"{path.name}::{name}", traceback.format_exc()))
            else:
                passed += 1
    for name, trace in failed:
        print(f"FAILED {name}\n{trace}")
    print(f"{passed} passed, {len(failed)} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
