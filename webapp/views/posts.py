"""Saved blog posts (contract §7): readable by the user whose organization owns them."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from queue_jobs.services import organizations
from webapp.context import db_pool
from webapp.hooks.identity import current_owner

bp = Blueprint("posts", __name__, url_prefix="/api/v1/posts")


@bp.get("/<post_id>")
def get_post(post_id: str) -> Response:
    owner = current_owner(user_required=True)
    assert owner.user_id is not None  # user_required
    with db_pool().connection() as conn:
        post = organizations.user_post(conn, post_id, owner.user_id)
    return jsonify(post)
