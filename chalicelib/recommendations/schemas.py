"""Request and response models of the recommendations."""
from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from chalicelib.catalog.schemas import ResourceCard

RecommendationLimit = Annotated[int, Meta(ge=1, le=50)]


class RecommendationQuery(Struct):
    limit: RecommendationLimit = 10


class Recommendations(Struct):
    """Resource cards, best first, as the catalog's listings show them. `basis`: `personal`
    (the buyer's library), `trending` (recent purchases, for a buyer with an empty library and
    for anyone), or `related` (a resource's category, tags and co-purchases)."""

    items: list[ResourceCard]
    basis: Literal["personal", "trending", "related"]
