"""Generated images: visible to whoever may see the job that made it, else not found."""

from __future__ import annotations

from queue_jobs.db import store
from queue_jobs.db.connections import Conn
from queue_jobs.models import Owner
from queue_jobs.services.errors import ImageNotFound, parse_id


def owned_image(conn: Conn, image_id: str, owner: Owner) -> tuple[str, bytes]:
    """The image's content type and bytes; ImageNotFound for a bad id or a stranger."""
    found = store.get_owned_image(conn, parse_id(image_id, ImageNotFound), owner)
    if found is None:
        raise ImageNotFound()
    content_type, data = found
    return content_type, bytes(data)
