"""Favorites (收藏): a user's saved resources, newest first. Saving twice or removing what
is not saved changes nothing (PUT and DELETE are idempotent)."""
from __future__ import annotations

from pynamodb.exceptions import PutError

from chalicelib import cursor, db
from chalicelib.catalog import public as catalog
from chalicelib.community import store
from chalicelib.community.schemas import FavoriteList, FavoriteOut
from chalicelib.community.store import FavoriteRecord
from chalicelib.errors import NotFound


def _key(user_id: str, resource_id: str) -> FavoriteRecord:
    return FavoriteRecord(pk=FavoriteRecord.key(user_id), sk=f"RES#{resource_id}")


def save(user_id: str, resource_id: str) -> FavoriteOut:
    """Save a published resource (once: saving again keeps the first date)."""
    [found] = db.batch_read(catalog.cards_read([resource_id]))
    card = catalog.published_cards_in(found).get(resource_id)
    if card is None:
        raise NotFound("No such resource.", code="resource_not_found")
    now = db.now_iso()
    record = _key(user_id, resource_id)
    record.resource_id, record.at = resource_id, now
    record.gsi1pk, record.gsi1sk = FavoriteRecord.listing(user_id), f"{now}#{resource_id}"
    try:
        record.save(condition=FavoriteRecord.sk.does_not_exist())
    except PutError as exc:
        if not db.is_condition_failure(exc):
            raise
        kept = FavoriteRecord.get(record.pk, record.sk, consistent_read=True)
        now = kept.at
    return FavoriteOut(resource=card, at=now)


def remove(user_id: str, resource_id: str) -> None:
    _key(user_id, resource_id).delete()


def mine(user_id: str, limit: int, cursor_text: str | None) -> FavoriteList:
    """Saved resources, newest first: one Query and one BatchGetItem for their cards (a
    resource unpublished since is left out)."""
    scope = f"favorites:{user_id}"
    items, position = db.page(store.favorites_page(user_id, limit,
                                                   cursor.decode(cursor_text, scope)))
    cards: dict = {}
    if items:
        [found] = db.batch_read(catalog.cards_read([f.resource_id for f in items]))
        cards = catalog.published_cards_in(found)
    return FavoriteList(items=[FavoriteOut(resource=cards[f.resource_id], at=f.at)
                               for f in items if f.resource_id in cards],
                        next_cursor=cursor.encode(position, scope))
