"""Every option this service shares with upstream Glance 33 is declared as upstream declares it.

An operator's glance-api.conf written from upstream's documentation must mean the same thing
here: same type (and list syntax: ``bounds``, item type), choices, min/max, default and
deprecated names (an old name or group upstream still reads is read here too).

Upstream's definitions: ``data/upstream-glance33-opts.yaml`` (its header says how it was
generated). Ours: the same generator (``data/opts_yaml.py``) over this service's namespaces
(``glance_service.api``, ``glance_service.registry``: what the sample configs list).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

DATA = Path(__file__).resolve().parent / "data"
UPSTREAM = DATA / "upstream-glance33-opts.yaml"
OURS = ("glance_service.api", "glance_service.registry")

# What is compared, per option.
FIELDS = (
    "type",
    "bounds",
    "item_type",
    "min_length",
    "regex",
    "max_length",
    "choices",
    "min",
    "max",
    "default",
    "deprecated_opts",
    "deprecated_for_removal",
    "secret",
)

# Deliberate differences: (group, option, field) -> why.
DELIBERATE = {
    ("paste_deploy", "flavor", "default"): (
        "'keystone': an unset flavor validates tokens. Upstream's unset flavor selects the "
        "'glance-api' paste pipeline (unauthenticated context); a forgotten line must not open "
        "the API. An empty value still gives the trusted-headers development mode."
    ),
    ("database", "connection", "default"): (
        "sqlite:////var/lib/glance/glance.sqlite (the embedded one-host default); upstream has "
        "no default and cannot start without one, so every upstream config sets it."
    ),
    ("DEFAULT", "user_storage_quota", "regex"): (
        "checked when the option is read, not on first use; also accepts K/M/G/T without the "
        "B ('1G'), which upstream refuses (its uploads then fail with a 500 error)."
    ),
}


def _index(options: dict) -> dict[tuple[str, str], list[dict]]:
    found: dict[tuple[str, str], list[dict]] = {}
    for group, data in options.items():
        for opt in data["opts"]:
            found.setdefault((group, opt["name"]), []).append(opt)
    return found


def _facts(opt: dict) -> dict:
    facts = {field: opt.get(field) for field in FIELDS}
    # Choices are compared by value (the descriptions are prose).
    facts["choices"] = [c[0] if isinstance(c, (list, tuple)) else c for c in opt["choices"]]
    facts["deprecated_opts"] = sorted((d["group"], d["name"]) for d in opt["deprecated_opts"])
    return facts


def _load_generator():
    spec = importlib.util.spec_from_file_location("opts_yaml", DATA / "opts_yaml.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def upstream() -> dict[tuple[str, str], dict]:
    found = _index(yaml.safe_load(UPSTREAM.read_text())["options"])
    merged = {}
    for key, entries in found.items():
        # The same option listed by several upstream namespaces is declared once.
        assert all(_facts(e) == _facts(entries[0]) for e in entries), key
        merged[key] = _facts(entries[0])
    return merged


@pytest.fixture(scope="module")
def ours() -> dict[tuple[str, str], list[dict]]:
    args = ["--format", "yaml"]
    for namespace in OURS:
        args += ["--namespace", namespace]
    text = _load_generator().generate(args)
    return {
        key: [_facts(e) for e in entries] for key, entries in _index(yaml.safe_load(text)["options"]).items()
    }


def test_the_upstream_data_is_upstream_glance_33():
    head = UPSTREAM.read_text()[:400]
    assert "Upstream Glance 33.0.0" in head
    data = yaml.safe_load(UPSTREAM.read_text())
    assert ("import_filtering_opts", "allowed_hosts") in _index(data["options"])


def test_shared_options_are_declared_as_upstream_declares_them(upstream, ours):
    shared = sorted(set(upstream) & set(ours))
    # The comparison has something to compare: the groups an operator copies from upstream.
    assert ("import_filtering_opts", "allowed_hosts") in shared
    assert ("DEFAULT", "enabled_import_methods") in shared
    assert ("database", "max_pool_size") in shared
    differences = []
    for group, name in shared:
        for facts in ours[(group, name)]:
            for field in FIELDS:
                mine, theirs = facts[field], upstream[(group, name)][field]
                if mine != theirs and (group, name, field) not in DELIBERATE:
                    differences.append(f"[{group}] {name} {field}: ours {mine!r}, upstream {theirs!r}")
    assert not differences, "\n".join(differences)


def test_deliberate_differences_are_still_differences(upstream, ours):
    """An allow-list entry that no longer differs is stale: remove it."""
    for (group, name, field), _why in DELIBERATE.items():
        assert any(f[field] != upstream[(group, name)][field] for f in ours[(group, name)]), (
            group,
            name,
            field,
        )


def test_our_own_options_do_not_shadow_an_upstream_name(upstream, ours):
    """An option only we have must not be an upstream option under another group, nor an old
    name upstream still reads (e.g. [DEFAULT] task_time_to_live, upstream's [task] one):
    an operator's setting under upstream's name would be ignored here."""
    by_name: dict[str, set[str]] = {}
    aliases = set()
    for (group, name), facts in upstream.items():
        by_name.setdefault(name, set()).add(group)
        aliases.update(facts["deprecated_opts"])
    shadowing = []
    for group, name in sorted(set(ours) - set(upstream)):
        if by_name.get(name):
            shadowing.append(f"[{group}] {name}: upstream has it in {sorted(by_name[name])}")
        if (group, name) in aliases:
            shadowing.append(f"[{group}] {name}: an old name upstream reads for another option")
    assert not shadowing, "\n".join(shadowing)


def test_a_config_written_for_upstream_is_read_as_upstream_reads_it(tmp_path):
    from oslo_config import cfg

    from glance_service.api import app
    from glance_service.images import import_options

    path = tmp_path / "glance-api.conf"
    path.write_text(
        "[DEFAULT]\n"
        "enabled_import_methods = [glance-direct, copy-image]\n"
        "disk_formats = raw,qcow2\n"  # the old [DEFAULT] name of [image_format] disk_formats
        "[task]\n"
        "task_time_to_live = 12\n"
        "[import_filtering_opts]\n"
        "allowed_hosts = [127.0.0.1]\n"
    )
    conf = cfg.ConfigOpts()
    app.register_opts(conf)
    import_options.register_opts(conf)
    conf(["--config-file", str(path)], default_config_files=[])
    assert conf.enabled_import_methods == ["glance-direct", "copy-image"]
    assert conf.image_format.disk_formats == ["raw", "qcow2"]
    assert conf.task.task_time_to_live == 12
    assert conf.import_filtering_opts.allowed_hosts == ["127.0.0.1"]

    old = tmp_path / "old.conf"
    old.write_text("[DEFAULT]\ntask_time_to_live = 6\n")  # the old name upstream still reads
    conf = cfg.ConfigOpts()
    import_options.register_opts(conf)
    conf(["--config-file", str(old)], default_config_files=[])
    assert conf.task.task_time_to_live == 6
