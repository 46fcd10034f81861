"""What every handler receives besides the request: the per-process services.

Built once per worker process (after gunicorn's fork) by ``api.app``; handlers never build
clients, stores or policy enforcers themselves.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING

from oslo_config import cfg

from glance_service.common import metrics, notifications
from glance_service.common.registrar import registrar
from glance_service.db.interface import DataAPI
from glance_service.registry import record_cache

if TYPE_CHECKING:
    import glance_service.api.image_views
    import glance_service.images.image_schema
    import glance_service.images.policy
    import glance_service.images.property_protections
    import glance_service.store

data_api_opts = [
    cfg.StrOpt(
        "data_api",
        default="registry",
        choices=[
            ("registry", "image metadata through glance-registry (the API holds no database credentials)"),
            ("database", "the API talks to the database directly ([database] connection)"),
        ],
        help="Where glance-api reads and writes image metadata.",
    ),
]


_register_data_api_opts = registrar((None, data_api_opts))


def register_opts(conf: cfg.ConfigOpts) -> None:
    _register_data_api_opts(conf)
    record_cache.register_opts(conf)


@dataclasses.dataclass
class Services:
    conf: cfg.ConfigOpts
    data: DataAPI
    stores: glance_service.store.Stores
    policy: glance_service.images.policy.Enforcer
    # The image schema of this configuration, compiled once (None only in tests that do not need it).
    schema: glance_service.images.image_schema.ImageSchema | None = None
    # The image serialiser of this configuration (built from ``conf`` on first use if None).
    view: glance_service.api.image_views.ImageView | None = None
    # Property protections ([DEFAULT] property_protection_file); None when off.
    protections: glance_service.images.property_protections.PropertyRules | None = None
    # Notifications (issue 18): what the handlers' hooks send through; sends nothing by default.
    notifier: notifications.Events = notifications.NOOP


def build_data_api(conf: cfg.ConfigOpts) -> DataAPI:
    """The data API of ``[DEFAULT] data_api``, behind the record cache when
    ``[metadata_cache] memcached_servers`` is set: image reads look there first; in direct
    mode this process owns the database, so it also fills and invalidates it."""
    if conf.data_api == "database":
        from glance_service.db.database_api import DatabaseAPI, image_status_summary
        from glance_service.db.unavailable import Answering503

        database = DatabaseAPI(conf)
        # issue 18 metrics: images by status where this process holds the database
        metrics.count_images_with(functools.partial(image_status_summary, database.db))
        # A database that does not answer: 503, as through the registry.
        return record_cache.wrap(conf, Answering503(database), read=True, owner=True)
    from glance_service.registry.client import RegistryClient

    return record_cache.wrap(conf, RegistryClient(conf), read=True, owner=False)


def build_stores(conf: cfg.ConfigOpts):
    from glance_service.store import Stores

    return Stores(conf)
