"""The process's Powertools Logger and Metrics, created once and wired into Chalice once
(`app.py` registers them as middleware). Service name and namespace come from the standard
Powertools environment variables set per stage."""
from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()
