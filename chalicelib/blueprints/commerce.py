"""Checkout, orders, the library and downloads; creators' sales; admins' orders and refunds;
the Stripe webhook."""
from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.catalog.schemas import PageQuery
from chalicelib.payments.schemas import (
    AdminOrdersQuery,
    CheckoutIn,
    CheckoutOut,
    DownloadOut,
    LibraryList,
    LibraryQuery,
    OrderEnvelope,
    OrderList,
    Quote,
    RefundAccepted,
    RefundIn,
    SalesList,
)
from chalicelib.web import ADMIN, ANYONE, CREATOR, USER, Ctx, Router, lazy

if TYPE_CHECKING:  # the modules themselves load on first use (see web.lazy)
    from chalicelib.payments import checkout, library, orders, webhooks
else:
    checkout = lazy("chalicelib.payments.checkout")
    library = lazy("chalicelib.payments.library")
    orders = lazy("chalicelib.payments.orders")
    webhooks = lazy("chalicelib.payments.webhooks")

bp = Blueprint(__name__)
api = Router(bp)


def _items(ctx: Ctx) -> list[str]:
    return [item.resource_id for item in ctx.body.items]


@api.route("/checkout/quote", "POST", role=USER, tags=("checkout",), body=CheckoutIn,
           response=Quote, errors=(404, 409, 422), summary="Price a would-be order")
def quote(ctx: Ctx) -> Quote:
    b = ctx.body
    return checkout.price(ctx.user_id, _items(ctx), b.plan_id, b.coupon_code,
                          b.points_to_redeem).quote


@api.route("/checkout", "POST", role=USER, tags=("checkout",), body=CheckoutIn, status=201,
           response=CheckoutOut, errors=(404, 409, 422, 502),
           summary="Create a pending order and its Stripe Checkout Session (free: granted)")
def create_checkout(ctx: Ctx):
    b = ctx.body
    return checkout.checkout(ctx.user_id, None, _items(ctx), b.plan_id, b.coupon_code,
                             b.points_to_redeem, b.interval, b.currency)


@api.route("/webhooks/stripe", "POST", role=ANYONE, tags=("webhooks",), status=200,
           errors=(400, 503), summary="Signed Stripe events; 2xx once durably queued")
def stripe_webhook(ctx: Ctx):
    event_id = webhooks.ingest(ctx.raw_body, ctx.headers.get("stripe-signature"))
    return {"received": True, "event_id": event_id}


@api.route("/me/orders", "GET", role=USER, tags=("orders",), query=PageQuery,
           response=OrderList, summary="Your orders, newest first")
def my_orders(ctx: Ctx) -> OrderList:
    return orders.list_mine(ctx.user_id, ctx.query.limit, ctx.query.cursor)


@api.route("/me/orders/{order_id}", "GET", role=USER, tags=("orders",), response=OrderEnvelope,
           errors=(404,), summary="One of your orders")
def my_order(ctx: Ctx, order_id: str) -> OrderEnvelope:
    return OrderEnvelope(order=orders.mine(ctx.user_id, order_id))


@api.route("/me/library", "GET", role=USER, tags=("library",), query=LibraryQuery,
           response=LibraryList,
           summary="Resources you may download (bought and free; or your membership's)")
def my_library(ctx: Ctx) -> LibraryList:
    q = ctx.query
    return library.library(ctx.user_id, q.limit, q.cursor, q.source)


@api.route("/me/library/{resource_id}/download", "POST", role=USER, tags=("library",),
           response=DownloadOut, errors=(403, 404, 429),
           summary="A presigned link (5 minutes) to the current file")
def download(ctx: Ctx, resource_id: str) -> DownloadOut:
    return library.download(ctx.user_id, resource_id, ctx.source_ip)


@api.route("/creator/sales", "GET", role=CREATOR, tags=("creator",), query=PageQuery,
           response=SalesList, summary="Your sold items, newest first")
def my_sales(ctx: Ctx) -> SalesList:
    return orders.sales(ctx.user_id, ctx.query.limit, ctx.query.cursor)


@api.route("/admin/orders", "GET", role=ADMIN, tags=("admin",), query=AdminOrdersQuery,
           response=OrderList, summary="Orders by status, user, resource and date range")
def all_orders(ctx: Ctx) -> OrderList:
    q = ctx.query
    return orders.list_all(q.status, q.user_id, q.resource_id, q.date_from, q.date_to, q.limit,
                           q.cursor)


@api.route("/admin/orders/{order_id}/refund", "POST", role=ADMIN, tags=("admin",),
           body=RefundIn, status=202, response=RefundAccepted, errors=(404, 409, 422, 502),
           summary="Refund all or part of an order; completed by the refund webhook")
def refund(ctx: Ctx, order_id: str) -> RefundAccepted:
    return orders.refund(ctx.user_id, order_id, ctx.body.amount, ctx.body.reason)

