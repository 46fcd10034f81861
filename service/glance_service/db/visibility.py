"""Who may see one image (reference section 4.1): the rule, in one place, with no SQL.

``db.image_rows.can_see`` applies it to a database row (the membership is one query, run only
when the rule needs it); ``registry.record_cache`` applies it to a cached record and the
image's member list, so a cache hit decides exactly as the database would have.
"""

from __future__ import annotations

from collections.abc import Callable

from glance_service.context import RequestContext


def can_see(ctx: RequestContext, owner: str | None, visibility: str, is_member: Callable[[], bool]) -> bool:
    """Single-image visibility: admin, ownerless, public/community, owner, or a member of a
    shared image in any member status (``is_member()``: the caller's project has a live
    membership). Deleted images are nobody's: the caller checks that first."""
    if ctx.is_admin or owner is None or visibility in ("public", "community"):
        return True
    if ctx.owner is None:
        return False
    if owner == ctx.owner:
        return True
    if visibility != "shared":
        return False
    return is_member()
