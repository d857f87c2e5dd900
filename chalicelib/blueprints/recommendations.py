"""Recommendations: a resource's related ones, trending ones, and yours."""
from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.recommendations.schemas import RecommendationQuery, Recommendations
from chalicelib.web import ANYONE, USER, Ctx, Router, lazy

if TYPE_CHECKING:  # the module itself loads on first use (see web.lazy)
    from chalicelib.recommendations import service as recommendations
else:
    recommendations = lazy("chalicelib.recommendations.service")

bp = Blueprint(__name__)
api = Router(bp)
TAGS = ("recommendations",)


# A literal segment: API Gateway (and Chalice locally) match it before /resources/{id}.
@api.route("/resources/trending", "GET", role=ANYONE, tags=TAGS, query=RecommendationQuery,
           response=Recommendations, errors=(400,),
           summary="Resources bought most in the last 7 days, recent days weighing more")
def trending(ctx: Ctx) -> Recommendations:
    return recommendations.trending(ctx.query.limit)


@api.route("/resources/{resource_id}/related", "GET", role=ANYONE, tags=TAGS,
           query=RecommendationQuery, response=Recommendations, errors=(400, 404),
           summary="Published resources sharing this one's category and tags, or bought with it")
def related(ctx: Ctx, resource_id: str) -> Recommendations:
    return recommendations.related(resource_id, ctx.query.limit)


@api.route("/me/recommendations", "GET", role=USER, tags=TAGS, query=RecommendationQuery,
           response=Recommendations, errors=(400, 401),
           summary="Resources for you, from your library (trending while it is empty)")
def mine(ctx: Ctx) -> Recommendations:
    return recommendations.for_user(ctx.user_id, ctx.query.limit)
