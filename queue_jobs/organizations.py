"""Organizations (made by website analysis) and the posts saved for them.

The funnel: an organization analysed anonymously belongs to that session until a user
presents the same x-session-id with a valid JWT; from then on it is the user's, and the
session alone no longer sees it.
"""

from __future__ import annotations

import uuid
from typing import Any

from queue_jobs import store
from queue_jobs.domain_errors import OrganizationNotFound, PostNotFound, parse_id
from queue_jobs.jobs import iso_utc
from queue_jobs.store import Conn, Organization, Owner, Post


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


def content_generation_input(request_body: dict[str, Any],
                             organization: Organization) -> dict[str, Any]:
    """The job carries what it needs, so the worker reads no other table."""
    return {**request_body, "organization": {
        "name": organization.name, "websiteUrl": organization.website_url,
        "analysis": organization.analysis}}


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


def saved_post_summary(post: Post) -> dict[str, Any]:
    """The `savedPost` of a content-generation result (contract §6.2)."""
    return {"id": str(post.id), "organizationId": str(post.organization_id),
            "title": post.title, "status": post.status, "createdAt": iso_utc(post.created_at)}


def post_document(post: Post) -> dict[str, Any]:
    return {
        **saved_post_summary(post),
        "content": post.content,
        "excerpt": post.excerpt,
        "tags": post.tags,
        "seo": post.seo,
        "visuals": post.visuals,
        "updatedAt": iso_utc(post.updated_at),
    }
