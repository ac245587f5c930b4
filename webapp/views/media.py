"""Generated images, served from PostgreSQL.

An image is visible to whoever may see the job that made it (the same user, or the same
session), like the job itself: strangers get 404. Browsers therefore fetch images with
the identity headers (fetch() + URL.createObjectURL) rather than a bare <img src>.
Images never change, hence the long private cache.
"""

from __future__ import annotations

from flask import Blueprint, Response

from queue_jobs.services import images
from webapp.context import db_pool
from webapp.hooks.identity import current_owner

bp = Blueprint("media", __name__, url_prefix="/api/v1/images")


@bp.get("/<image_id>")
def get_image(image_id: str) -> Response:
    owner = current_owner()
    with db_pool().connection() as conn:
        content_type, data = images.owned_image(conn, image_id, owner)
    response = Response(data, mimetype=content_type)
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.vary.add("Authorization")
    response.vary.add("x-session-id")
    return response
