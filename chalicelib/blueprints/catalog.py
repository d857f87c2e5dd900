"""The public catalog: categories, listings, details, creators' pages and search."""
from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.catalog.schemas import (
    CardList,
    CatalogQuery,
    CategoryTree,
    CreatorProfile,
    PageQuery,
    PublicResourceEnvelope,
    SearchQuery,
)
from chalicelib.web import ANYONE, Ctx, Router, lazy

if TYPE_CHECKING:  # the modules themselves load on first use (see web.lazy)
    from chalicelib.catalog import categories, public
else:
    categories = lazy("chalicelib.catalog.categories")
    public = lazy("chalicelib.catalog.public")

bp = Blueprint(__name__)
api = Router(bp)
TAGS = ("catalog",)


@api.route("/categories", "GET", role=ANYONE, tags=TAGS, response=CategoryTree,
           summary="The category tree")
def category_tree(ctx: Ctx) -> CategoryTree:
    return CategoryTree(items=categories.tree())


@api.route("/resources", "GET", role=ANYONE, tags=TAGS, query=CatalogQuery, response=CardList,
           summary="Published resources by category or tag; newest, popular or rating first")
def list_resources(ctx: Ctx) -> CardList:
    q = ctx.query
    return public.catalog(q.category, q.tag, q.sort, q.limit, q.cursor)


@api.route("/resources/{resource_id}", "GET", role=ANYONE, tags=TAGS,
           response=PublicResourceEnvelope, errors=(404,), summary="A published resource")
def get_resource(ctx: Ctx, resource_id: str) -> PublicResourceEnvelope:
    return PublicResourceEnvelope(resource=public.detail(resource_id, viewer=ctx.visitor))


@api.route("/creators/{creator_id}", "GET", role=ANYONE, tags=TAGS, query=PageQuery,
           response=CreatorProfile, errors=(404,),
           summary="A creator's public page with their published resources")
def creator_page(ctx: Ctx, creator_id: str) -> CreatorProfile:
    return public.creator_page(creator_id, ctx.query.limit, ctx.query.cursor)


@api.route("/search", "GET", role=ANYONE, tags=TAGS, query=SearchQuery, response=CardList,
           summary="Full-text search over titles, descriptions and tags (Chinese and Latin)")
def search(ctx: Ctx) -> CardList:
    q = ctx.query
    return public.search(q.q, q.limit, q.cursor)
