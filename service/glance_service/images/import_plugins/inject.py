"""``inject_image_metadata``: ``[inject_metadata_properties] inject`` set on the image unless
the importing user has one of ``ignore_user_roles`` (upstream's plugin). Keys in Glance's
reserved ``os_glance`` namespace are dropped with a warning, as upstream drops them."""

from __future__ import annotations

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

RESERVED = "os_glance"


def properties_for(roles: list[str], ignore_user_roles: list[str], inject: dict) -> dict:
    """The properties to inject for a user with ``roles`` (empty: none)."""
    if any(role in ignore_user_roles for role in roles):
        return {}
    return {key: value for key, value in inject.items() if not key.startswith(RESERVED)}


def run(job) -> None:
    group = job.conf.inject_metadata_properties
    for key in group.inject:
        if key.startswith(RESERVED):
            LOG.warning("Dropping %s during metadata injection for %s", key, job.image_id)
    job.properties.update(properties_for(job.roles, group.ignore_user_roles, group.inject))
