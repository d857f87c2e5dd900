"""The process's Powertools Logger and Metrics, created once and wired into Chalice once
(`app.py` registers them as middleware). Service name and namespace come from the standard
Powertools environment variables; every stage publishes into the one namespace `Paidres`, and
every metric carries the stage as a dimension (`stage`, beside Powertools' `service`), so one
dashboard query or alarm names one stage's metrics."""
from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()
# The STAGE setting (chalicelib.config reads the same variable), read here without building
# the whole settings at import time.
metrics.set_default_dimensions(stage=os.environ.get("STAGE", "local"))
