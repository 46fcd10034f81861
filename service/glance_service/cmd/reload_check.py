"""Build a service's application from its configuration files, in a fresh interpreter.

A process serving without a master (``workers = 0``, ``common.solo_server``) checks a new
configuration before its reload with this command instead of a forked child: its serving
threads may hold locks (logging, pools, caches) at the moment of a fork, and a child that
needs one of them never finishes. A fresh interpreter inherits no lock.

    python -m glance_service.cmd.reload_check glance-api --config-file /etc/glance/glance-api.conf

Exit 0 when the application builds; else 1, the reason on the last line of standard output.
"""

from __future__ import annotations

import os
import sys

from glance_service.common import metrics

OK = "ok"


def _builders():
    from glance_service.cmd import api, registry

    return {
        "glance-api": (api.load_config, api.build_app),
        "glance-registry": (registry.load_config, registry.build_app),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    proc_name, config_args = argv[0], argv[1:]
    load, build = _builders()[proc_name]
    try:
        # The answer is the last line printed; the service logs it. Nothing goes to a log file
        # of the check's own (oslo.log would name one after this module's runner).
        conf = load([*config_args, "--log-file", os.devnull])
        metrics.serving(build(conf), conf, proc_name)
    except BaseException as exc:  # noqa: BLE001 - every failure is the answer
        print(" ".join(f"{type(exc).__name__}: {exc}".split()) if str(exc) else type(exc).__name__)
        return 1
    print(OK)
    return 0


if __name__ == "__main__":
    sys.exit(main())
