"""Job ids: UUID version 7 (RFC 9562), time-ordered.

A random (version 4) id lands anywhere in the jobs primary key, so on a big table each
insert reads and dirties a random index page; time-ordered ids go to the index's right
edge, which stays in memory, so creates stay as fast on a big table as on a small one.
The first 48 bits are the creation time in milliseconds, which the
status document shows anyway (createdAt); the other 74 bits are random.
"""

from __future__ import annotations

import secrets
import time
import uuid


def uuid7() -> uuid.UUID:
    millis = time.time_ns() // 1_000_000
    value = (millis & (2**48 - 1)) << 80 | secrets.randbits(80)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # the RFC 9562 variant
    return uuid.UUID(int=value)
