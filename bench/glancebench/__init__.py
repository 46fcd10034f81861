"""The benchmark harness: the bundled image service side by side with upstream Glance."""
