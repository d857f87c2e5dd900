"""The paid-resources platform: one Chalice app. Routes live in blueprints by area
(`chalicelib/blueprints/`); this module only wires them, the middleware and the event
handlers together."""
# ruff: noqa: E402  (the imports follow coldstart.begin() on purpose)
# isort: off
from chalicelib import coldstart  # first: it eases garbage collection during the cold start

coldstart.begin()
# isort: on
from aws_lambda_powertools.logging import correlation_paths
from chalice import ConvertToMiddleware, Rate

from chalicelib.blueprints import (
    admin,
    auth,
    catalog,
    commerce,
    community,
    coupons,
    creator,
    me,
    memberships,
    moderation,
    points,
    recommendations,
    referrals,
    reports,
    system,
)
from chalicelib.config import queue_name_for_import, settings
from chalicelib.events import process_batch
from chalicelib.observability import logger, metrics
from chalicelib.web import HttpApiChalice, envelope_middleware

# Served by an API Gateway HTTP API (payload format 1.0), not the REST API Chalice packages.
app = HttpApiChalice(app_name="paidres", configure_logs=False)

app.register_middleware(coldstart.middleware, "all")
app.register_middleware(ConvertToMiddleware(
    logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)), "all")
app.register_middleware(ConvertToMiddleware(metrics.log_metrics), "all")
app.register_middleware(envelope_middleware, "http")

for blueprint in (system.bp, auth.bp, me.bp, admin.bp, creator.bp, catalog.bp, moderation.bp,
                  commerce.bp, coupons.bp, memberships.bp, points.bp, reports.bp,
                  recommendations.bp, community.bp, referrals.bp):
    app.register_blueprint(blueprint)

if settings().local_mode:
    # Only the local stack sets LOCAL_MODE; devstack is not in the Lambda package.
    from devstack import routes as local_routes

    app.register_blueprint(local_routes.bp)


# A batch of up to 100 messages (or what 5 s bring): the rollup counts a whole batch with one
# write per distinct counter, and a sale still shows in the reports within seconds.
@app.on_sqs_message(queue=queue_name_for_import("ANALYTICS_QUEUE"), batch_size=100,
                    maximum_batching_window_in_seconds=5, name="analytics_rollup")
def analytics_rollup(event):
    """Hands the outbox's domain events to their subscribers and counts every analytics
    message and domain event once; failures are reported per record."""
    from chalicelib.analytics.rollup import handle

    return handle(event.to_dict()["Records"])


# Invoked by the uploads bucket itself (S3 ObjectCreated under creators/, asynchronously), not
# through a queue: no poller runs while idle. `chalice package` cannot attach
# `@app.on_s3_event` to a bucket another stack owns, so infra/ wires it: the bucket's
# notification (infra/resources.yaml), the permission, retries and the on-failure DLQ
# (infra/app-merge.yaml); devstack/pump.py reads the same templates locally.
@app.lambda_function(name="upload_events")
def upload_events(event, context):
    """Checks every object creators upload (the S3 event, one or more records)."""
    from chalicelib.catalog.files import handle_s3_event

    handle_s3_event(event)


@app.on_sqs_message(queue=queue_name_for_import("PAYMENTS_QUEUE"), batch_size=10,
                    name="payment_events")
def payment_events(event):
    """Applies verified Stripe events to orders, once per event id."""
    from chalicelib.payments import consumer

    consumer.use_context(event.context)
    return process_batch(event, consumer.record_handler)


@app.schedule(Rate(15, unit=Rate.MINUTES), name="reconcile_payments")
def reconcile_payments(event):
    """Repairs orders whose payment events never arrived, from Stripe's own record, sends
    the domain events a crash or a queue outage left in the outbox, and expires the points
    lots that are due."""
    from chalicelib import outbox
    from chalicelib.payments.reconciliation import reconcile
    from chalicelib.points import service as points_service

    return {**reconcile(), "relayed": outbox.relay(), "points": points_service.expire_due()}
