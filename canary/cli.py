"""`weir`: the controller (`weir run`), the analysis tools (`weir analyze`), the sandbox and the demo.

Each area registers its own sub-commands. Only the area of the command being run is imported, so
`weir run` does not pay for the statistics stack and `weir analyze` does not load the Kubernetes client.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# command -> module with register(subparsers)
AREAS = {"run": "canary.runner", "analyze": "analysis.cli", "sandbox": "sandbox.cli", "demo": "sandbox.cli"}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weir", description="Progressive delivery for Kubernetes Deployments.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = [AREAS[command]] if command in AREAS else sorted(set(AREAS.values()))
    for module in modules:
        importlib.import_module(module).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args_list if not a.startswith("-")), None)
    args = build_parser(command).parse_args(args_list)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
