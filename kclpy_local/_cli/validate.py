from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("validate", help="check a transcript or captured exchange against the schemas")
    p.add_argument("file")
    p.set_defaults(func=lambda args: 0)
