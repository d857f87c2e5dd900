"""Community over the API on moto: reviews by buyers only with exact ratings, comments with a
safe Markdown subset, reports that hide content at the threshold, favorites and the
notifications they all leave behind."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser

import pytest

from tests.support import assert_envelope, drain, load_event, post_webhooks, take_webhooks


def _delete(api, path, token):
    return api.call("DELETE", path, token=token)


def _put(api, path, body=None, token=None):
    return api.call("PUT", path, body, token=token)


@pytest.fixture
def bought(api, shop, pump):
    """The shop's buyer, paid up: returns a function making more paying buyers."""
    def buyer() -> tuple[dict, str]:
        user, pair = api.user_session()
        _, deliveries = shop.pay(token=pair["access_token"])
        post_webhooks(api, deliveries, pump)
        return user, pair["access_token"]

    _, deliveries = shop.pay()
    post_webhooks(api, deliveries, pump)
    assert shop.resource["id"] in shop.library()
    return buyer


def _reviews_path(shop) -> str:
    return f"/resources/{shop.resource['id']}/reviews"


def _comments_path(shop) -> str:
    return f"/resources/{shop.resource['id']}/comments"


def _rating(api, shop) -> tuple[float | None, int]:
    counts = api.get(f"/resources/{shop.resource['id']}").body["resource"]["counts"]
    return counts["rating_avg"], counts["rating_count"]


def _unread(api, token) -> int:
    return api.get("/me/notifications", token=token).body["unread"]


# --- reviews ---------------------------------------------------------------------------

def test_only_a_buyer_reviews_and_only_once(api, shop, bought):
    # Given a signed-in user who has not bought the resource
    _, stranger = api.user_session()
    # Then they may not review it
    assert_envelope(api.post(_reviews_path(shop), {"rating": 5}, token=stranger[
        "access_token"]), 403, "purchase_required")
    # Nor may its creator
    assert_envelope(api.post(_reviews_path(shop), {"rating": 5}, token=shop.creator_token),
                    403, "own_resource")
    # When the buyer reviews it
    made = api.post(_reviews_path(shop), {"rating": 4, "body": "很实用 **推荐**"},
                    token=shop.token)
    assert made.status == 201, made.body
    review = made.body["review"]
    assert (review["rating"], review["status"], review["reply"]) == (4, "visible", None)
    assert "<strong>推荐</strong>" in review["html"]
    # Then a second review is refused, naming the first
    again = assert_envelope(api.post(_reviews_path(shop), {"rating": 1}, token=shop.token),
                            409, "already_reviewed")
    assert again["details"]["review_id"] == review["id"]
    # And the resource shows the rating, the page one Query of newest first
    assert _rating(api, shop) == (4.0, 1)
    listed = api.get(_reviews_path(shop)).body
    assert [r["id"] for r in listed["items"]] == [review["id"]]


def test_editing_and_deleting_a_review_moves_the_average_by_what_it_held(api, shop, bought):
    other, other_token = bought()
    mine = api.post(_reviews_path(shop), {"rating": 2}, token=shop.token).body["review"]
    api.post(_reviews_path(shop), {"rating": 4}, token=other_token)
    assert _rating(api, shop) == (3.0, 2)
    edited = api.patch(f"{_reviews_path(shop)}/{mine['id']}", {"rating": 5, "body": "改主意了"},
                       token=shop.token)
    assert edited.status == 200, edited.body
    assert (edited.body["review"]["rating"], edited.body["review"]["body"]) == (5, "改主意了")
    assert _rating(api, shop) == (4.5, 2)
    assert _delete(api, f"{_reviews_path(shop)}/{mine['id']}", shop.token).status == 204
    assert _rating(api, shop) == (4.0, 1)
    assert [r["author"]["id"] for r in api.get(_reviews_path(shop)).body["items"]] == \
        [other["id"]]
    # Deleted, it may be written afresh
    assert api.post(_reviews_path(shop), {"rating": 3}, token=shop.token).status == 201


def test_another_users_review_cannot_be_edited_deleted_or_answered(api, shop, bought, creator):
    review = api.post(_reviews_path(shop), {"rating": 5, "body": "好"},
                      token=shop.token).body["review"]
    path = f"{_reviews_path(shop)}/{review['id']}"
    _, other_token = bought()
    _, other_creator = api.creator_session()
    for token in (other_token, other_creator["access_token"], shop.creator_token):
        assert_envelope(api.patch(path, {"rating": 1}, token=token), 404, "review_not_found")
        assert_envelope(_delete(api, path, token), 404, "review_not_found")
    # A creator answers reviews of their own resources only
    assert_envelope(_put(api, path + "/reply", {"body": "谢谢"},
                         token=other_creator["access_token"]), 404, "review_not_found")
    # Unchanged by all of it
    assert api.get(_reviews_path(shop)).body["items"][0]["rating"] == 5
    assert _rating(api, shop) == (5.0, 1)


def test_the_creators_reply_reaches_the_reviewer(api, shop, bought):
    review = api.post(_reviews_path(shop), {"rating": 3, "body": "第三章太短"},
                      token=shop.token).body["review"]
    # The creator was told of the review
    creator_notes = api.get("/me/notifications", token=shop.creator_token).body
    assert "new_review" in [n["type"] for n in creator_notes["items"]]
    before = _unread(api, shop.token)
    replied = _put(api, f"{_reviews_path(shop)}/{review['id']}/reply",
                   {"body": "下个版本会补充"}, token=shop.creator_token)
    assert replied.status == 200, replied.body
    assert replied.body["review"]["reply"]["body"] == "下个版本会补充"
    notes = api.get("/me/notifications", token=shop.token).body
    assert notes["unread"] == before + 1
    assert notes["items"][0]["type"] == "review_reply"


def test_concurrent_ratings_leave_an_exact_average(api, shop, bought):
    from chalicelib.catalog import store as catalog_store
    from chalicelib.community import reviews
    from devstack.stack import serialise_moto_dynamodb

    # DynamoDB serialises conflicting writes; in-process moto needs it done for it
    serialise_moto_dynamodb()
    buyers = [shop.buyer["id"]] + [bought()[0]["id"] for _ in range(7)]
    ratings = [5, 4, 3, 5, 1, 2, 4, 5]
    start = threading.Barrier(len(buyers))

    def rate(pair):
        user_id, rating = pair
        start.wait(timeout=60)
        review = reviews.post(user_id, shop.resource["id"], rating, None)
        start2.wait(timeout=60)
        # then everyone changes their mind at once
        return reviews.edit(user_id, shop.resource["id"], review.id, 6 - rating, None)

    start2 = threading.Barrier(len(buyers))
    with ThreadPoolExecutor(len(buyers)) as pool:
        list(pool.map(rate, zip(buyers, ratings, strict=True)))
    record = catalog_store.get_resource(shop.resource["id"])
    assert (int(record.rating_sum), int(record.rating_count)) == \
        (sum(6 - r for r in ratings), len(ratings))
    avg, count = _rating(api, shop)
    assert count == 8 and avg == pytest.approx(sum(6 - r for r in ratings) / 8, abs=0.01)


def test_a_full_refund_withdraws_the_buyers_review(api, shop, stripe, pump):
    made, deliveries = shop.pay()
    post_webhooks(api, deliveries, pump)
    api.post(_reviews_path(shop), {"rating": 1, "body": "差"}, token=shop.token)
    assert _rating(api, shop) == (1.0, 1)
    refund = api.post(f"/admin/orders/{made['order']['id']}/refund",
                      {"reason": "requested_by_customer"}, token=shop.admin_token)
    assert refund.status == 202, refund.body
    post_webhooks(api, take_webhooks(stripe), pump)
    drain(pump)
    assert shop.order(made["order"]["id"])["status"] == "refunded"
    # The rating left the average; the review is not listed; no longer a buyer, no new one
    assert _rating(api, shop) == (None, 0)
    assert api.get(_reviews_path(shop)).body["items"] == []
    assert_envelope(api.post(_reviews_path(shop), {"rating": 5}, token=shop.token), 403,
                    "purchase_required")
    types = [n["type"] for n in api.get("/me/notifications", token=shop.token).body["items"]]
    assert "refund" in types and "payment" in types


# --- comments --------------------------------------------------------------------------

class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


SAFE_TAGS = {"p", "a", "em", "strong", "code", "pre", "ul", "ol", "li", "blockquote", "br",
             "s", "del"}


@pytest.mark.parametrize("payload", load_event("xss_payloads.json")["payloads"])
def test_xss_payloads_come_back_inert(api, shop, payload):
    # Given any signed-in user posting a hostile comment
    _, pair = api.user_session()
    made = api.post(_comments_path(shop), {"body": payload}, token=pair["access_token"])
    assert made.status == 201, made.body
    for html in (made.body["comment"]["html"],
                 api.get(_comments_path(shop)).body["items"][0]["html"]):
        parsed = _Tags()
        parsed.feed(html)
        # Then only the safe subset's tags come back, with no handlers, styles or scripts
        assert {tag for tag, _ in parsed.tags} <= SAFE_TAGS, html
        for tag, attrs in parsed.tags:
            assert set(attrs) <= {"href", "rel", "title", "class"}, html
            href = (attrs.get("href") or "").strip().lower()
            assert not href.startswith(("javascript:", "data:", "vbscript:")), html
            if tag == "a":
                assert "nofollow" in attrs["rel"]
    # The source is kept as written
    assert made.body["comment"]["body"] == payload


def test_comments_thread_one_level_deep(api, shop):
    _, alice = api.user_session(name="Alice")
    bob, bob_pair = api.user_session(name="Bob")
    first = api.post(_comments_path(shop), {"body": "第一"}, token=bob_pair["access_token"]
                     ).body["comment"]
    second = api.post(_comments_path(shop), {"body": "第二"}, token=alice["access_token"]
                      ).body["comment"]
    reply = api.post(_comments_path(shop), {"body": "回复", "parent_id": first["id"]},
                     token=alice["access_token"])
    assert reply.status == 201, reply.body
    assert reply.body["comment"]["parent_id"] == first["id"]
    assert_envelope(api.post(_comments_path(shop), {"body": "再回复", "parent_id":
                                                    reply.body["comment"]["id"]},
                             token=bob_pair["access_token"]), 422, "reply_depth")
    # Newest thread first, each followed by its replies
    listed = api.get(_comments_path(shop)).body["items"]
    assert [c["id"] for c in listed] == [second["id"], first["id"],
                                         reply.body["comment"]["id"]]
    assert listed[1]["replies"] == 1
    # Bob was told of the reply
    notes = api.get("/me/notifications", token=bob_pair["access_token"]).body
    assert (notes["unread"], notes["items"][0]["type"]) == (1, "comment_reply")


def test_another_users_comment_cannot_be_edited_or_deleted(api, shop, admin):
    _, alice = api.user_session()
    _, bob = api.user_session()
    comment = api.post(_comments_path(shop), {"body": "我的"}, token=alice["access_token"]
                       ).body["comment"]
    path = f"{_comments_path(shop)}/{comment['id']}"
    for token in (bob["access_token"], shop.creator_token, admin[1]["access_token"]):
        assert_envelope(api.patch(path, {"body": "改了"}, token=token), 404,
                        "comment_not_found")
        assert_envelope(_delete(api, path, token), 404, "comment_not_found")
    assert api.get(_comments_path(shop)).body["items"][0]["body"] == "我的"


def test_a_deleted_comment_keeps_its_place_without_its_words(api, shop):
    _, alice = api.user_session()
    comment = api.post(_comments_path(shop), {"body": "说错了"}, token=alice["access_token"]
                       ).body["comment"]
    path = f"{_comments_path(shop)}/{comment['id']}"
    edited = api.patch(path, {"body": "说对了"}, token=alice["access_token"])
    assert edited.status == 200 and edited.body["comment"]["edited_at"]
    assert _delete(api, path, alice["access_token"]).status == 204
    [shown] = api.get(_comments_path(shop)).body["items"]
    assert (shown["status"], shown["body"], shown["html"]) == ("deleted", None, None)
    # Gone for good: nothing left to edit or delete
    assert_envelope(api.patch(path, {"body": "复活"}, token=alice["access_token"]), 404,
                    "comment_not_found")
    assert_envelope(_delete(api, path, alice["access_token"]), 404, "comment_not_found")


def test_the_edit_window_closes(api, shop):
    import time

    from chalicelib import db
    from chalicelib.community import store

    _, alice = api.user_session()
    comment = api.post(_comments_path(shop), {"body": "早"}, token=alice["access_token"]
                       ).body["comment"]
    # Given the comment was posted 16 minutes ago
    record = store.comment(shop.resource["id"], comment["id"])
    record.update(actions=[store.CommentRecord.created_at.set(db.iso_at(time.time() - 960))])
    assert_envelope(api.patch(f"{_comments_path(shop)}/{comment['id']}", {"body": "晚"},
                              token=alice["access_token"]), 409, "edit_window_closed")


def test_commenting_is_rate_limited_per_user(api, shop):
    _, alice = api.user_session()
    _, bob = api.user_session()
    for n in range(5):
        assert api.post(_comments_path(shop), {"body": f"#{n}"},
                        token=alice["access_token"]).status == 201
    refused = api.post(_comments_path(shop), {"body": "too many"}, token=alice["access_token"])
    assert_envelope(refused, 429, "comment_rate_limited")
    assert int(refused.headers["Retry-After"]) >= 1
    # Others are not held back
    assert api.post(_comments_path(shop), {"body": "我可以"}, token=bob["access_token"]
                    ).status == 201
    assert len(api.get(_comments_path(shop)).body["items"]) == 6


def test_a_banned_user_cannot_comment_until_unbanned(api, shop, admin):
    alice, pair = api.user_session()
    admin_token = admin[1]["access_token"]
    assert _put(api, f"/admin/users/{alice['id']}/comment-ban", {"reason": "spam"},
                token=admin_token).body["banned"] is True
    assert_envelope(api.post(_comments_path(shop), {"body": "hi"},
                             token=pair["access_token"]), 403, "comment_banned")
    assert _delete(api, f"/admin/users/{alice['id']}/comment-ban", admin_token).status == 200
    assert api.post(_comments_path(shop), {"body": "hi"}, token=pair["access_token"]
                    ).status == 201
    actions = [e["action"] for e in api.get("/admin/audit", token=admin_token).body["items"]]
    assert {"ban_commenting", "unban_commenting"} <= set(actions)


def test_text_fields_have_limits(api, shop, bought):
    _, alice = api.user_session()
    assert_envelope(api.post(_comments_path(shop), {"body": "x" * 2001},
                             token=alice["access_token"]), 400)
    assert_envelope(api.post(_comments_path(shop), {"body": "   "},
                             token=alice["access_token"]), 400)
    assert_envelope(api.post(_reviews_path(shop), {"rating": 6}, token=shop.token), 400)
    assert_envelope(api.post(_comments_path(shop), {"body": "a", "author_id": "x"},
                             token=alice["access_token"]), 400)


# --- reports and moderation ------------------------------------------------------------

def _report(api, shop, comment_id, token):
    return api.post(f"/resources/{shop.resource['id']}/reports",
                    {"target_type": "comment", "target_id": comment_id, "reason": "spam"},
                    token=token)


def test_reports_hide_a_comment_after_the_threshold_of_distinct_reporters(api, shop, admin):
    admin_token = admin[1]["access_token"]
    author, author_pair = api.user_session()
    comment = api.post(_comments_path(shop), {"body": "买粉加微信"},
                       token=author_pair["access_token"]).body["comment"]
    reporters = [api.user_session()[1]["access_token"] for _ in range(3)]
    # Two distinct reporters, one of them twice: still shown, counted twice
    assert _report(api, shop, comment["id"], reporters[0]).body["reports"] == 1
    again = _report(api, shop, comment["id"], reporters[0]).body
    assert (again["reports"], again["hidden"]) == (1, False)
    assert _report(api, shop, comment["id"], reporters[1]).body["hidden"] is False
    assert api.get(_comments_path(shop)).body["items"][0]["status"] == "visible"
    # The third distinct reporter hides it pending review
    third = _report(api, shop, comment["id"], reporters[2]).body
    assert (third["reports"], third["hidden"]) == (3, True)
    [shown] = api.get(_comments_path(shop)).body["items"]
    assert (shown["status"], shown["body"]) == ("hidden", None)
    # In the admin's queue, and the author was told
    [case] = api.get("/admin/moderation/cases", token=admin_token).body["items"]
    assert (case["target_id"], case["reports"], case["auto_hidden"], case["state"]) == \
        (comment["id"], 3, True, "open")
    assert api.get("/me/notifications", token=author_pair["access_token"]
                   ).body["items"][0]["type"] == "moderation"
    # An admin dismisses the reports: shown again, the case closed, all of it audited
    decided = api.post("/admin/moderation/decisions",
                       {"target_type": "comment", "resource_id": shop.resource["id"],
                        "target_id": comment["id"], "decision": "dismiss",
                        "reason": "广告嫌疑不成立"}, token=admin_token)
    assert decided.status == 200, decided.body
    assert (decided.body["case"]["state"], decided.body["case"]["outcome"]) == \
        ("closed", "dismissed")
    assert api.get(_comments_path(shop)).body["items"][0]["status"] == "visible"
    assert api.get("/admin/moderation/cases", token=admin_token).body["items"] == []
    closed = api.get("/admin/moderation/cases?state=closed", token=admin_token).body["items"]
    assert [c["target_id"] for c in closed] == [comment["id"]]
    actions = [e["action"] for e in api.get("/admin/audit", token=admin_token).body["items"]]
    assert {"auto_hide", "dismiss_comment"} <= set(actions)


def test_concurrent_reports_hide_once_at_the_threshold(api, shop):
    from chalicelib.community import reports
    from devstack.stack import serialise_moto_dynamodb

    serialise_moto_dynamodb()
    _, author = api.user_session()
    comment = api.post(_comments_path(shop), {"body": "spam"}, token=author["access_token"]
                       ).body["comment"]
    users = [api.user_session()[0]["id"] for _ in range(6)]
    start = threading.Barrier(len(users))

    def report(user_id):
        start.wait(timeout=60)
        return reports.report(user_id, shop.resource["id"], "comment", comment["id"],
                              "spam", None)

    with ThreadPoolExecutor(len(users)) as pool:
        results = list(pool.map(report, users))
    assert max(r.reports for r in results) == 6
    assert api.get(_comments_path(shop)).body["items"][0]["status"] == "hidden"
    hidden_audits = [e for e in api.get("/admin/audit", token=shop.admin_token).body["items"]
                     if e["action"] == "auto_hide"]
    assert len(hidden_audits) == 1


def test_an_admin_hides_a_review_and_its_rating_leaves_the_average(api, shop, bought):
    review = api.post(_reviews_path(shop), {"rating": 1, "body": "垃圾"},
                      token=shop.token).body["review"]
    decided = api.post("/admin/moderation/decisions",
                       {"target_type": "review", "resource_id": shop.resource["id"],
                        "target_id": review["id"], "decision": "hide", "reason": "辱骂"},
                       token=shop.admin_token)
    assert decided.status == 200, decided.body
    assert _rating(api, shop) == (None, 0)
    assert api.get(_reviews_path(shop)).body["items"] == []
    assert api.get("/me/notifications", token=shop.token).body["items"][0]["type"] == \
        "moderation"
    api.post("/admin/moderation/decisions",
             {"target_type": "review", "resource_id": shop.resource["id"],
              "target_id": review["id"], "decision": "unhide", "reason": "申诉成功"},
             token=shop.admin_token)
    assert _rating(api, shop) == (1.0, 1)


def test_a_reported_resource_waits_for_an_admin(api, shop):
    reporters = [api.user_session()[1]["access_token"] for _ in range(4)]
    for token in reporters:
        reply = api.post(f"/resources/{shop.resource['id']}/reports",
                         {"target_type": "resource", "reason": "copyright",
                          "note": "盗版"}, token=token)
        assert reply.status == 200, reply.body
    # Never hidden by reports alone: a paid resource comes down only by an admin
    assert api.get(f"/resources/{shop.resource['id']}").status == 200
    [case] = api.get("/admin/moderation/cases", token=shop.admin_token).body["items"]
    assert (case["target_type"], case["reports"], case["auto_hidden"]) == ("resource", 4, False)
    api.post("/admin/moderation/decisions",
             {"target_type": "resource", "resource_id": shop.resource["id"],
              "decision": "hide", "reason": "侵权"}, token=shop.admin_token)
    assert api.get(f"/resources/{shop.resource['id']}").status == 404


def test_reports_name_what_they_report(api, shop):
    _, pair = api.user_session()
    path = f"/resources/{shop.resource['id']}/reports"
    assert_envelope(api.post(path, {"target_type": "comment", "reason": "spam"},
                             token=pair["access_token"]), 400, "validation_error")
    assert_envelope(api.post(path, {"target_type": "comment", "target_id": "nope",
                                    "reason": "spam"}, token=pair["access_token"]), 404,
                    "target_not_found")


# --- favorites and notifications -------------------------------------------------------

def test_favorites_are_idempotent_and_listed_newest_first(api, shop):
    _, pair = api.user_session()
    token = pair["access_token"]
    path = f"/me/favorites/{shop.resource['id']}"
    first = _put(api, path, token=token)
    assert first.status == 200, first.body
    assert _put(api, path, token=token).body["favorite"]["at"] == first.body["favorite"]["at"]
    assert [f["resource"]["id"] for f in api.get("/me/favorites", token=token).body["items"]] \
        == [shop.resource["id"]]
    assert_envelope(_put(api, "/me/favorites/nope", token=token), 404)
    assert _delete(api, path, token).status == 204
    assert _delete(api, path, token).status == 204
    assert api.get("/me/favorites", token=token).body["items"] == []


def test_notifications_are_marked_read_by_their_owner_only(api, shop, bought, pump):
    drain(pump)
    notes = api.get("/me/notifications", token=shop.token).body
    assert notes["unread"] >= 1 and notes["items"][0]["type"] == "payment"
    _, other = api.user_session()
    assert_envelope(api.post("/me/notifications/read", {"ids": [notes["items"][0]["id"]]},
                             token=other["access_token"]), 404)
    assert_envelope(api.post("/me/notifications/read", {}, token=shop.token), 400,
                    "validation_error")
    marked = api.post("/me/notifications/read", {"ids": [notes["items"][0]["id"]]},
                      token=shop.token)
    assert marked.body["unread"] == notes["unread"] - 1
    assert api.post("/me/notifications/read", {"all": True}, token=shop.token
                    ).body["unread"] == 0
    after = api.get("/me/notifications", token=shop.token).body
    assert after["unread"] == 0 and all(n["read"] for n in after["items"])


def test_the_creator_hears_the_review_decision(api, creator, admin, pump):
    from tests.support import publish

    _, pair = creator
    publish(api, pump, pair["access_token"], admin[1]["access_token"])
    drain(pump)
    notes = api.get("/me/notifications", token=pair["access_token"]).body
    assert notes["unread"] == 1
    assert notes["items"][0]["type"] == "resource_approved"



def test_sorting_by_rating_follows_the_reviews(api, shop, bought, stripe, pump):
    from tests.support import publish

    # Given a second resource the buyer owns as well
    other = publish(api, pump, shop.creator_token, shop.admin_token, title="第二本书")
    made = shop.checkout(items=[other["id"]])
    stripe.pay(made["checkout_session_id"])
    post_webhooks(api, take_webhooks(stripe), pump)
    # When the second is rated higher
    api.post(_reviews_path(shop), {"rating": 2}, token=shop.token)
    second = api.post(f"/resources/{other['id']}/reviews", {"rating": 5}, token=shop.token)
    assert second.status == 201, second.body

    def ranked() -> list[str]:
        return [r["id"] for r in api.get("/resources?sort=rating").body["items"]]

    # Then it sorts first by rating
    assert ranked().index(other["id"]) < ranked().index(shop.resource["id"])
    # And once its review is deleted (unrated), the rated one leads
    path = f"/resources/{other['id']}/reviews/{second.body['review']['id']}"
    assert _delete(api, path, shop.token).status == 204
    assert ranked().index(shop.resource["id"]) < ranked().index(other["id"])
