"""Admins make, change and list coupons; a coupon's terms for an order follow its rules."""
from __future__ import annotations

import pytest

from chalicelib import db
from chalicelib.coupons import service, store
from tests.support import assert_envelope

PERCENT = {"code": "spring20", "kind": "percent", "percent_off": 20, "categories": ["data"],
           "max_redemptions": 5, "max_per_user": 1, "valid_until": "2099-01-01T00:00:00Z"}
FIXED = {"code": "WELCOME-5", "kind": "fixed", "amounts_off": {"cny": 500, "usd": 100},
         "minimum_amounts": {"cny": 2000}, "first_purchase_only": True}


@pytest.fixture
def admin_token(admin):
    return admin[1]["access_token"]


def test_an_admin_makes_a_coupon_and_reads_it_back_by_any_case(api, admin_token):
    made = api.post("/admin/coupons", PERCENT, token=admin_token)
    assert made.status == 201, made.body
    coupon = made.body["coupon"]
    assert (coupon["code"], coupon["percent_off"], coupon["categories"]) == \
        ("SPRING20", 20, ["data"])
    assert (coupon["redeemed"], coupon["reserved"], coupon["active"]) == (0, 0, True)
    assert api.get("/admin/coupons/Spring20", token=admin_token).body["coupon"] == coupon


def test_a_taken_code_is_409_whatever_its_case(api, admin_token):
    assert api.post("/admin/coupons", FIXED, token=admin_token).status == 201
    again = api.post("/admin/coupons", {**FIXED, "code": "welcome-5"}, token=admin_token)
    assert_envelope(again, 409, "coupon_exists")


@pytest.mark.parametrize("body", [
    {"code": "BAD1", "kind": "percent", "amounts_off": {"cny": 100}},
    {"code": "BAD2", "kind": "fixed", "percent_off": 10},
    {"code": "BAD3", "kind": "percent", "percent_off": 10,
     "valid_from": "2026-02-01", "valid_until": "2026-01-01"},
])
def test_terms_that_contradict_each_other_are_refused(api, admin_token, body):
    assert_envelope(api.post("/admin/coupons", body, token=admin_token), 422,
                    "coupon_terms_invalid")


def test_unknown_fields_and_bad_codes_are_400(api, admin_token):
    assert_envelope(api.post("/admin/coupons", {**PERCENT, "redeemed": 0}, token=admin_token),
                    400)
    assert_envelope(api.post("/admin/coupons", {**PERCENT, "code": "no spaces"},
                             token=admin_token), 400)


def test_buyers_cannot_see_or_make_coupons(api):
    _, pair = api.user_session()
    assert_envelope(api.get("/admin/coupons", token=pair["access_token"]), 403)
    assert_envelope(api.post("/admin/coupons", PERCENT, token=pair["access_token"]), 403)


def test_an_admin_deactivates_a_coupon_and_lists_them_newest_first(api, admin_token):
    api.post("/admin/coupons", PERCENT, token=admin_token)
    api.post("/admin/coupons", FIXED, token=admin_token)
    changed = api.patch("/admin/coupons/SPRING20", {"active": False, "max_redemptions": None},
                        token=admin_token)
    assert changed.status == 200, changed.body
    assert (changed.body["coupon"]["active"], changed.body["coupon"]["max_redemptions"]) == \
        (False, None)
    listed = api.get("/admin/coupons?limit=1", token=admin_token).body
    assert [c["code"] for c in listed["items"]] == ["WELCOME-5"]
    rest = api.get(f"/admin/coupons?limit=5&cursor={listed['next_cursor']}",
                   token=admin_token).body
    assert [c["code"] for c in rest["items"]] == ["SPRING20"]
    assert_envelope(api.patch("/admin/coupons/NOPE", {"active": False}, token=admin_token),
                    404, "coupon_not_found")


def test_redemptions_of_a_coupon_are_listed_and_an_unknown_coupon_is_404(api, admin_token):
    api.post("/admin/coupons", PERCENT, token=admin_token)
    store.Redemption(pk=store.CouponRecord.key("SPRING20"), sk=store.Redemption.sort_key("o1"),
                     order_id="o1", user_id="u1", status="consumed", discount=980,
                     currency="cny", at=db.now_iso()).save()
    listed = api.get("/admin/coupons/spring20/redemptions", token=admin_token).body
    assert [(r["order_id"], r["status"], r["discount"]) for r in listed["items"]] == \
        [("o1", "consumed", 980)]
    assert_envelope(api.get("/admin/coupons/NOPE/redemptions", token=admin_token), 404)


def test_terms_refuse_what_is_inactive_early_late_used_up_or_in_another_currency(
        api, admin_token):
    api.post("/admin/coupons", {**PERCENT, "valid_from": "2026-06-01T00:00:00Z"},
             token=admin_token)
    api.post("/admin/coupons", FIXED, token=admin_token)
    percent, fixed = store.get("SPRING20"), store.get("WELCOME-5")
    terms = service.terms_for(percent, "cny", "2026-07-01T00:00:00Z")
    assert (terms.percent_off, terms.categories) == (20, frozenset({"data"}))
    assert service.terms_for(fixed, "usd", "2026-07-01").amount_off == 100
    assert service.terms_for(fixed, "cny", "2026-07-01").minimum_amount == 2000
    cases = [(percent, "cny", "2026-05-01T00:00:00Z", "coupon_not_started"),
             (percent, "cny", "2099-01-01T00:00:00Z", "coupon_expired"),
             (fixed, "eur", "2026-07-01", "coupon_not_applicable"),
             (None, "cny", "2026-07-01", "coupon_invalid")]
    for record, currency, now, code in cases:
        with pytest.raises(service.CouponInvalid) as refused:
            service.terms_for(record, currency, now)
        assert refused.value.code == code
    percent.update(actions=[store.CouponRecord.reserved.set(3),
                            store.CouponRecord.redeemed.set(2),
                            store.CouponRecord.claimed.set(5)])
    with pytest.raises(service.CouponInvalid, match="used up"):
        service.terms_for(store.get("SPRING20"), "cny", "2026-07-01T00:00:00Z")
