"""A Glance-compatible image service: Image API v2, registry, and management commands."""
