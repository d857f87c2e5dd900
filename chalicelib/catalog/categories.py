"""The admin-managed category tree. The whole tree is one Query; it is small and changes
rarely, so the process keeps it for a minute rather than reading it on every request."""
from __future__ import annotations

import time

from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.expressions.update import Action

from chalicelib import db
from chalicelib.catalog import store
from chalicelib.catalog.schemas import Category
from chalicelib.catalog.store import CategoryRecord
from chalicelib.errors import Conflict, NotFound, Refused

CACHE_SECONDS = 60
MAX_DEPTH = 3
_cache: tuple[float, dict[str, CategoryRecord]] | None = None


def _all(fresh: bool = False) -> dict[str, CategoryRecord]:
    global _cache
    now = time.monotonic()
    if not fresh and _cache is not None and now - _cache[0] < CACHE_SECONDS:
        return _cache[1]
    records = {r.sk: r for r in store.all_categories()}
    _cache = (now, records)
    return records


def forget() -> None:
    global _cache
    _cache = None


def path(slug: str) -> list[str]:
    """The slug and its ancestors, root last; 422 for a category that does not exist (the
    tree is data admins change, so no request schema can list it)."""
    records = _all()
    if slug not in records:
        records = _all(fresh=True)
    if slug not in records:
        raise Refused("No such category.", code="unknown_category",
                               details={"fields": {"category": "unknown"}})
    out: list[str] = []
    current: str | None = slug
    while current and current not in out:
        out.append(current)
        current = records[current].parent if current in records else None
    return out


def tree() -> list[Category]:
    """Every category, nested under its parent, ordered by position then name."""
    records = _all()
    nodes = {slug: Category(slug=slug, name=r.name, parent=r.parent, position=int(r.position),
                            children=[]) for slug, r in records.items()}
    roots: list[Category] = []
    for node in nodes.values():
        parent = nodes.get(node.parent) if node.parent else None
        (parent.children if parent else roots).append(node)

    def order(items: list[Category]) -> list[Category]:
        items.sort(key=lambda c: (c.position, c.name))
        for item in items:
            order(item.children)
        return items

    return order(roots)


def create(slug: str, name: str, parent: str | None, position: int) -> Category:
    if parent is not None and len(path(parent)) >= MAX_DEPTH:
        raise Refused(f"Categories nest at most {MAX_DEPTH} deep.", code="category_too_deep",
                      details={"fields": {"parent": "too deep"}})
    record = CategoryRecord(sk=slug, name=name.strip(), parent=parent, position=position)
    try:
        record.save(condition=CategoryRecord.sk.does_not_exist())
    except PutError as exc:
        if db.is_condition_failure(exc):
            raise Conflict("A category with this slug exists.", code="category_exists") from None
        raise
    forget()
    return Category(slug=slug, name=record.name, parent=parent, position=position, children=[])


def update(slug: str, name: str | None, position: int | None) -> Category:
    actions: list[Action] = []
    if name is not None:
        actions.append(CategoryRecord.name.set(name.strip()))
    if position is not None:
        actions.append(CategoryRecord.position.set(position))
    record: CategoryRecord | None
    try:
        if actions:
            record = CategoryRecord(sk=slug)
            record.update(actions=actions, condition=CategoryRecord.sk.exists())
        else:
            record = store.get_category(slug)
    except UpdateError as exc:
        if db.is_condition_failure(exc):
            raise NotFound("No such category.") from None
        raise
    if record is None:
        raise NotFound("No such category.")
    forget()
    return Category(slug=slug, name=record.name, parent=record.parent,
                    position=int(record.position), children=[])


def delete(slug: str) -> None:
    """Delete a leaf category. Resources keep their slug; new ones cannot use it."""
    if any(r.parent == slug for r in _all(fresh=True).values()):
        raise Conflict("The category has subcategories.", code="category_not_empty")
    try:
        CategoryRecord(sk=slug).delete(condition=CategoryRecord.sk.exists())
    except DeleteError as exc:
        if db.is_condition_failure(exc):
            raise NotFound("No such category.") from None
        raise
    forget()
