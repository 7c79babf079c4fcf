"""`weir`: the controller (`weir run`), the analysis tools (`weir analyze`), the sandbox and the demo.

Each area registers its own sub-commands, so this module only wires them together.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from analysis.cli import register as register_analysis
    from sandbox.cli import register as register_sandbox

    from canary.runner import register as register_run

    parser = argparse.ArgumentParser(prog="weir", description="Progressive delivery for Kubernetes Deployments.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register_run(commands)
    register_analysis(commands)
    register_sandbox(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    code: int = handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
