"""`make openapi`: the OpenAPI document of the app as `chalicelib.apispec` builds it, printed.

    python -m devstack.openapi > docs/openapi.yaml

The app is imported in the `local` stage environment (the /_local routes are documented,
marked local-only); nothing calls AWS.
"""
from __future__ import annotations

import os
import sys

from devstack import stage


def main() -> int:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    stage.apply("local")
    from app import app
    from chalicelib import apispec

    sys.stdout.write(apispec.render(apispec.build(app)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
