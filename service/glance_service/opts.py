"""Option lists for ``oslo-config-generator`` (entry points in ``pyproject.toml``).

Each command's options live next to the code that reads them; this module only gathers
them, so the generated ``etc/*.conf.sample`` files list exactly what the service reads.
Library options (keystonemiddleware, glance_store, oslo.log, oslo.policy) come from the
libraries' own namespaces in ``etc/oslo-config-generator/*.conf``.
"""

from __future__ import annotations

import copy

from oslo_config import cfg

from glance_service.common import config


def _server(port: int) -> list[tuple[str | None, list[cfg.Opt]]]:
    return [(None, config.server_opts(port)), ("paste_deploy", config.paste_deploy_opts)]


def _healthcheck() -> list[tuple[str | None, list[cfg.Opt]]]:
    # ours; oslo.middleware's [healthcheck] options come from its namespace
    from glance_service.common import healthcheck

    return [(group, copy.deepcopy(opts)) for group, opts in healthcheck.list_opts()]


def list_api_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    from glance_service import store
    from glance_service.api import cors, image_views, options, stage_proxy, upload_recovery, versions, wiring
    from glance_service.common import auth, notifications, wsgi_server
    from glance_service.db import session
    from glance_service.images import image_schema, import_options, property_protections
    from glance_service.registry import client, identity, record_cache

    default = [
        *config.server_opts(9292),
        *wiring.data_api_opts,
        *client.registry_client_opts,
        *identity.identity_opts,
        *auth.auth_cache_opts,
        *wsgi_server.reload_opts,
        *wsgi_server.memory_opts,
        *versions.versions_opts,
        *stage_proxy.opts,
        *image_views.display_opts,
        *options.paging_opts,
        *options.quota_opts,
        *options.data_opts,
        *options.scrubber_opts,
        *options.cache_opts,
        *options.unified_limits_opts,  # unified limits
        *upload_recovery.recovery_opts,
        *store.multistore_opts,
        *property_protections.property_opts,  # property protections (issue 18)
        *notifications.notifier_opts,  # notifications (issue 18)
    ]
    import_groups = [(group, copy.deepcopy(opts)) for group, opts in import_options.list_opts()]
    # import plugins (issue 18): [image_import_opts], [image_conversion], [inject_metadata_properties]
    from glance_service.images import import_plugins

    import_groups += [(group, copy.deepcopy(opts)) for group, opts in import_plugins.list_opts()]
    return [
        (None, copy.deepcopy(default)),
        ("paste_deploy", copy.deepcopy(config.paste_deploy_opts)),
        ("image_format", copy.deepcopy(image_schema.image_format_opts + options.image_format_opts)),
        *session.list_opts(),
        *import_groups,
        *[(group, copy.deepcopy(opts)) for group, opts in record_cache.list_opts()],
        *_healthcheck(),
        *cors.list_opts(),  # CORS (issue 18)
        *_glance_download(),  # glance-download: [glance_download_properties]
        *_metrics(),  # issue 18 metrics
    ]


def _glance_download() -> list[tuple[str | None, list[cfg.Opt]]]:
    from glance_service.images import glance_download

    return [(group, copy.deepcopy(opts)) for group, opts in glance_download.list_opts()]


def list_registry_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    from glance_service.common import wsgi_server
    from glance_service.db import session
    from glance_service.registry import identity, record_cache

    return [
        (
            None,
            [
                *config.server_opts(9191),
                *identity.identity_opts,
                *wsgi_server.reload_opts,
                *wsgi_server.memory_opts,
            ],
        ),
        ("paste_deploy", copy.deepcopy(config.paste_deploy_opts)),
        *session.list_opts(),
        *[(group, copy.deepcopy(opts)) for group, opts in record_cache.list_opts()],
        *_healthcheck(),
        *_metrics(),  # issue 18 metrics
    ]


def _metrics() -> list[tuple[str | None, list[cfg.Opt]]]:
    # issue 18: [metrics] (common.metrics), the same options in both services
    from glance_service.common import metrics

    return [(group, copy.deepcopy(opts)) for group, opts in metrics.list_opts()]
