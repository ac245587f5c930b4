"""Organizations (made by website analysis) and the posts saved for them.

The funnel: an organization analysed anonymously belongs to that session until a user
presents the same x-session-id with a valid JWT; from then on it is the user's, and the
session alone no longer sees it.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg_pool import ConnectionPool

from queue_jobs.db import store
from queue_jobs.db.store import Conn
from queue_jobs.models import Organization, Owner, Post, iso_utc
from queue_jobs.services.errors import OrganizationNotFound, PostNotFound, parse_id


def claim_session_organizations(conn: Conn, owner: Owner) -> None:
    if owner.user_id is not None and owner.session_id is not None:
        store.claim_session_organizations(conn, owner.user_id, owner.session_id)


def visible_organization(conn: Conn, organization_id: str, owner: Owner) -> Organization:
    """The organization if this owner may use it, else OrganizationNotFound."""
    organization = store.get_visible_organization(
        conn, parse_id(organization_id, OrganizationNotFound), owner)
    if organization is None:
        raise OrganizationNotFound()
    return organization


def content_generation_input(pool: ConnectionPool, owner: Owner,
                             body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The job input and the (normalised) request body of a validated content-generation
    request, with the organization the user may use (handing the session's over first,
    committed even if the create is then refused). The job carries what it needs, so the
    worker reads no other table."""
    with pool.connection() as conn:
        claim_session_organizations(conn, owner)
    with pool.connection() as conn:
        organization = visible_organization(conn, body["organizationId"], owner)
    request_body = {**body, "organizationId": str(organization.id)}  # one spelling
    job_input = {**request_body, "organization": {
        "name": organization.name, "websiteUrl": organization.website_url,
        "analysis": organization.analysis}}
    return job_input, request_body


def user_organizations(conn: Conn, owner: Owner) -> list[dict[str, Any]]:
    assert owner.user_id is not None  # callers require a signed-in user
    claim_session_organizations(conn, owner)
    return [organization_document(o) for o in store.list_user_organizations(conn, owner.user_id)]


def organization_document(organization: Organization) -> dict[str, Any]:
    return {
        "id": str(organization.id),
        "name": organization.name,
        "websiteUrl": organization.website_url,
        "analysis": organization.analysis,
        "createdAt": iso_utc(organization.created_at),
    }


def user_post(conn: Conn, post_id: str, user_id: uuid.UUID) -> dict[str, Any]:
    post = store.get_user_post(conn, parse_id(post_id, PostNotFound), user_id)
    if post is None:
        raise PostNotFound()
    return post_document(post)


def post_document(post: Post) -> dict[str, Any]:
    return {
        **post.summary(),
        "content": post.content,
        "excerpt": post.excerpt,
        "tags": post.tags,
        "seo": post.seo,
        "visuals": post.visuals,
        "updatedAt": iso_utc(post.updated_at),
    }
