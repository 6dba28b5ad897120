#!/usr/bin/env python3
"""Write the generated reference documents: docs/protocol.md and docs/configuration.md.

    python scripts/gen_docs.py            # (re)write them
    python scripts/gen_docs.py --check    # exit 1, naming each stale file, if they differ

The content comes from ``kclpy_local._docgen`` (the protocol schemas, the
properties key table, the launcher source).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kclpy_local._docgen import DOCUMENTS  # noqa: E402


def _shown(path: Path) -> str:
    """``path`` relative to the checkout when it is inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a file differs from what would be generated",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs",
        metavar="DIR",
        help="directory of the documents (default: docs/ of this checkout)",
    )
    args = parser.parse_args(argv)
    stale: list[Path] = []
    for name, generate in DOCUMENTS.items():
        path = args.out / name
        text = generate()
        try:
            current = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current == text:
            continue
        if args.check:
            stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {_shown(path)}")
    for path in stale:
        print(f"{_shown(path)} is stale: run python scripts/gen_docs.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
