"""`python -m sandbox.demoapp`: run the demo app with settings from the environment."""

from __future__ import annotations

import asyncio
import os
import sys

from sandbox.demoapp.server import serve
from sandbox.demoapp.settings import DemoAppSettings


def main() -> int:
    try:
        settings = DemoAppSettings.from_env(os.environ)
    except ValueError as error:
        print(f"demoapp: {error}", file=sys.stderr)
        return 2
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
