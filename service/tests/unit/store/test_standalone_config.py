"""glance-standalone renders the store set-up the toolkit renders: multi-store, one file backend.

(The data path of a multi-store runs against real processes, see test_multistore.py's note;
here the rendered options are read back as the service reads them.)"""

import re

from glance_store import multi_backend
from oslo_config import cfg

from glance_service.cmd import standalone
from glance_service.store import RESERVED_STORES, register_opts


def test_standalone_config_is_a_multi_store_under_the_data_dir(tmp_path):
    path = standalone.write_config(tmp_path, "127.0.0.1", 9292)
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf([], default_config_files=[str(path)])
    assert conf.enabled_backends == {"file": "file", "http": "http"}
    assert not re.search(r"^(stores|default_store)\s*=", path.read_text(), re.M)  # no single-store form
    multi_backend.register_store_opts(conf, reserved_stores=dict(RESERVED_STORES))
    assert conf.glance_store.default_backend == "file"
    assert conf.file.filesystem_store_datadir == str(tmp_path / "images")
    assert conf.os_glance_staging_store.filesystem_store_datadir == str(tmp_path / "staging")
    assert conf.os_glance_tasks_store.filesystem_store_datadir == str(tmp_path / "tasks")
