"""Generated images, served from PostgreSQL.

Image URLs are capabilities: the id is a random UUID that only the job's result reveals,
so an <img src> works without headers. Images never change, hence the long cache.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, current_app

from queue_jobs import store
from queue_jobs.domain_errors import ImageNotFound

bp = Blueprint("media", __name__, url_prefix="/api/v1/images")


@bp.get("/<image_id>")
def get_image(image_id: str) -> Response:
    try:
        parsed = uuid.UUID(image_id)
    except ValueError:
        raise ImageNotFound() from None
    with current_app.extensions["db_pool"].connection() as conn:
        found = store.get_image(conn, parsed)
    if found is None:
        raise ImageNotFound()
    content_type, data = found
    response = Response(bytes(data), mimetype=content_type)
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
