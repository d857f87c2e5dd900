"""Recommendations: also-bought, related, personal and trending resources, from co-purchase,
tag and daily counts kept by the payments context's order events."""
