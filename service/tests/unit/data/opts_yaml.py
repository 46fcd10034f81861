"""``oslo-config-generator --format yaml``, with the type details it leaves out.

The generator's machine-readable output gives each option's type name, default, choices,
min/max and deprecated names, but not what a list's or dict's type says about its syntax:
``bounds`` (the value is written ``[a, b]``), the item type (with its own min/max/choices) and
``min_length``; nor a string's ``regex``/``max_length``. This wrapper adds those keys to every
option entry and otherwise is the generator itself (same options, same namespaces).

It needs only oslo.config and PyYAML, so it runs in upstream Glance's virtualenv too:

    .venv-glance-upstream/bin/python service/tests/unit/data/opts_yaml.py \\
        --namespace glance.api --namespace glance ... --output-file OUT.yaml

``tests/unit/test_upstream_options.py`` runs it on this service's namespaces and compares
with ``upstream-glance33-opts.yaml``, which it produced from upstream Glance 33.
"""

from __future__ import annotations

import io
import sys

from oslo_config import cfg, generator, types


def _type(t: object) -> dict:
    choices = getattr(t, "choices", None)
    return {
        "type": generator._format_type_name(t),
        "min": getattr(t, "min", None),
        "max": getattr(t, "max", None),
        "choices": list(choices) if choices else [],
    }


def type_details(t: object) -> dict:
    """The keys this wrapper adds to an entry, from the option's type object."""
    details: dict = {"bounds": None, "item_type": None, "min_length": None, "regex": None, "max_length": None}
    if isinstance(t, types.List):
        details.update(bounds=t.bounds, item_type=_type(t.item_type), min_length=t.min_length)
    elif isinstance(t, types.Dict):
        details.update(bounds=t.bounds, item_type=_type(t.value_type), min_length=t.min_length)
    elif isinstance(t, types.String):
        regex = getattr(t, "regex", None)
        details.update(regex=regex.pattern if regex is not None else None, max_length=t.max_length or None)
    return details


_build_entry = generator._build_entry


def _build_entry_with_types(opt, group, namespace, conf):
    entry = _build_entry(opt, group, namespace, conf)
    entry.update(type_details(opt.type))
    return entry


def generate(argv: list[str], header: str = "") -> str:
    """The generator's yaml (json with --format json) for ``argv``, with ``header`` on top."""
    generator._build_entry = _build_entry_with_types
    try:
        conf = cfg.ConfigOpts()
        generator.register_cli_opts(conf)
        conf(argv)
        out = io.StringIO()
        generator.generate(conf, output_file=out)
    finally:
        generator._build_entry = _build_entry
    return header + out.getvalue()


def main(argv: list[str]) -> None:
    output, header, args = None, "", []
    it = iter(argv)
    for arg in it:
        if arg == "--output-file":
            output = next(it)
        elif arg == "--header-file":
            with open(next(it)) as f:
                header = f.read()
        else:
            args.append(arg)
    text = generate(args, header)
    if output:
        with open(output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main(sys.argv[1:])
