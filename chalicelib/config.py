"""Configuration, read from the environment and nowhere else.

Every setting the code uses is named here once. `.chalice/config.json` sets the values per
stage; the local stack and the tests load the `local` stage from the same file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

VERSION = "0.1.0"

# An access token lives at most this long; the contract says 15 minutes or less.
MAX_ACCESS_TOKEN_SECONDS = 900


class ConfigError(RuntimeError):
    """A required setting is missing or malformed: a deployment fault, never user input."""


def _flag(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(env: dict, name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _fee_bps(env: dict) -> int:
    bps = _int(env, "PLATFORM_FEE_BPS", 1000)
    if not 0 <= bps <= 10000:
        raise ConfigError("PLATFORM_FEE_BPS must be between 0 and 10000")
    return bps


def _referral_reward(env: dict) -> str:
    kind = env.get("REFERRAL_REWARD") or "points"
    if kind not in ("points", "commission"):
        raise ConfigError(f"REFERRAL_REWARD must be points or commission, got {kind!r}")
    bps = _int(env, "REFERRAL_COMMISSION_BPS", 1000)
    if not 0 <= bps <= 10000 or _int(env, "REFERRAL_REWARD_POINTS", 500) < 0:
        raise ConfigError("REFERRAL_COMMISSION_BPS must be 0..10000, REFERRAL_REWARD_POINTS >= 0")
    return kind


@dataclass(frozen=True)
class Settings:
    app_name: str
    stage: str
    region: str
    aws_endpoint_url: str | None
    # (service, URL) for each AWS_ENDPOINT_URL_<SERVICE> set, botocore's names: one service
    # elsewhere than the rest (the real-S3 tests run S3 and SQS on LocalStack).
    service_endpoint_urls: tuple[tuple[str, str], ...]
    local_mode: bool
    users_table: str
    auth_table: str
    stats_table: str
    catalog_table: str
    listings_table: str
    search_table: str
    coupons_table: str
    memberships_table: str
    points_table: str
    recommendations_table: str
    community_table: str
    referrals_table: str
    orders_table: str
    idempotency_table: str
    payments_queue: str
    stripe_api_base: str | None
    stripe_secret_key: str | None
    stripe_webhook_secrets: tuple[str, ...]
    download_url_seconds: int
    uploads_bucket: str
    analytics_queue: str
    upload_events_dlq: str
    max_upload_bytes: int
    multipart_threshold_bytes: int
    upload_url_seconds: int
    secrets_parameter: str
    jwt_issuer: str
    jwt_audience: str
    access_token_seconds: int
    refresh_token_days: int
    reset_token_minutes: int
    login_max_failures: int
    login_window_seconds: int
    creator_auto_approve: bool
    mail_from: str
    public_base_url: str
    storefront_url: str
    secrets_cache_seconds: int
    # Points earned per whole major unit (1.00) of a paid order's amount.
    points_earn_per_major: int
    # The platform's fee on creators' sales, in basis points (1000 = 10 %), counted at sale
    # time (and reversed with refunds at the same rate), so a new rate never rewrites history.
    platform_fee_bps: int = 1000
    # What a referrer earns on a referred buyer's first paid order: `points` (a fixed number,
    # REFERRAL_REWARD_POINTS) or `commission` (REFERRAL_COMMISSION_BPS of the amount paid,
    # owed by the platform out of its fee). Reversed in proportion by refunds.
    referral_reward: str = "points"
    referral_reward_points: int = 500
    referral_commission_bps: int = 1000

    def endpoint_url(self, service: str) -> str | None:
        """Where `service`'s client sends requests: its own endpoint, the shared one, or None
        (AWS's)."""
        return dict(self.service_endpoint_urls).get(service, self.aws_endpoint_url)

    @classmethod
    def from_env(cls, env: dict) -> "Settings":
        def req(name: str) -> str:
            value = env.get(name)
            if not value:
                raise ConfigError(f"environment variable {name} is required")
            return value

        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if not region:
            raise ConfigError("AWS_REGION or AWS_DEFAULT_REGION is required")
        access = _int(env, "ACCESS_TOKEN_SECONDS", MAX_ACCESS_TOKEN_SECONDS)
        if not 60 <= access <= MAX_ACCESS_TOKEN_SECONDS:
            raise ConfigError("ACCESS_TOKEN_SECONDS must be between 60 and 900")
        api = env.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000")
        return cls(
            app_name=env.get("APP_NAME", "paidres"),
            stage=req("STAGE"),
            region=region,
            aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            service_endpoint_urls=tuple(sorted(
                (name[len("AWS_ENDPOINT_URL_"):].lower(), value) for name, value in env.items()
                if name.startswith("AWS_ENDPOINT_URL_") and value)),
            local_mode=_flag(env.get("LOCAL_MODE")),
            users_table=req("USERS_TABLE"),
            auth_table=req("AUTH_TABLE"),
            stats_table=req("STATS_TABLE"),
            catalog_table=req("CATALOG_TABLE"),
            listings_table=req("LISTINGS_TABLE"),
            search_table=req("SEARCH_TABLE"),
            coupons_table=req("COUPONS_TABLE"),
            memberships_table=req("MEMBERSHIPS_TABLE"),
            points_table=req("POINTS_TABLE"),
            recommendations_table=req("RECOMMENDATIONS_TABLE"),
            community_table=req("COMMUNITY_TABLE"),
            referrals_table=req("REFERRALS_TABLE"),
            orders_table=req("ORDERS_TABLE"),
            idempotency_table=req("IDEMPOTENCY_TABLE"),
            payments_queue=req("PAYMENTS_QUEUE"),
            stripe_api_base=env.get("STRIPE_API_BASE") or None,
            stripe_secret_key=env.get("STRIPE_SECRET_KEY") or None,
            # Several secrets, comma-separated, while an endpoint secret is being rolled.
            stripe_webhook_secrets=tuple(
                s.strip() for s in env.get("STRIPE_WEBHOOK_SECRET", "").split(",") if s.strip()),
            download_url_seconds=min(_int(env, "DOWNLOAD_URL_SECONDS", 300), 300),
            uploads_bucket=req("UPLOADS_BUCKET"),
            analytics_queue=req("ANALYTICS_QUEUE"),
            upload_events_dlq=req("UPLOAD_EVENTS_DLQ"),
            max_upload_bytes=_int(env, "MAX_UPLOAD_BYTES", 2 * 1024**3),
            multipart_threshold_bytes=_int(env, "MULTIPART_THRESHOLD_BYTES", 100 * 1024**2),
            upload_url_seconds=min(_int(env, "UPLOAD_URL_SECONDS", 900), 900),
            secrets_parameter=req("SECRETS_PARAMETER"),
            jwt_issuer=req("JWT_ISSUER"),
            jwt_audience=req("JWT_AUDIENCE"),
            access_token_seconds=access,
            refresh_token_days=_int(env, "REFRESH_TOKEN_DAYS", 30),
            reset_token_minutes=_int(env, "RESET_TOKEN_MINUTES", 30),
            login_max_failures=_int(env, "LOGIN_MAX_FAILURES", 5),
            login_window_seconds=_int(env, "LOGIN_WINDOW_SECONDS", 900),
            creator_auto_approve=_flag(env.get("CREATOR_AUTO_APPROVE")),
            mail_from=req("MAIL_FROM"),
            public_base_url=api.rstrip("/"),
            storefront_url=env.get("STOREFRONT_URL", api).rstrip("/"),
            secrets_cache_seconds=_int(env, "SECRETS_CACHE_SECONDS", 300),
            points_earn_per_major=_int(env, "POINTS_EARN_PER_MAJOR", 1),
            platform_fee_bps=_fee_bps(env),
            referral_reward=_referral_reward(env),
            referral_reward_points=_int(env, "REFERRAL_REWARD_POINTS", 500),
            referral_commission_bps=_int(env, "REFERRAL_COMMISSION_BPS", 1000),
        )


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The settings of this process, read once from `os.environ`."""
    return Settings.from_env(dict(os.environ))


def queue_name_for_import(name: str) -> str:
    """A queue name needed while the app module is imported (event-source declarations).

    `chalice package` imports the app with the stage's environment, so this is set there too.
    """
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"environment variable {name} is required")
    return value
