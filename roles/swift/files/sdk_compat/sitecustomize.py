"""Loaded (through PYTHONPATH) only by the openstack.cloud module processes of the swift role's
Keystone registration (the same shim as roles/glance/files/sdk_compat: roles stay independent).

openstack.cloud 2.5 (the `ansible` 12 package) reads ``openstack.version.__version__`` after a
bare ``import openstack``; openstacksdk 4.22 no longer imports that submodule itself. Importing it
here first restores what the collection expects. Remove once the collection imports it itself.
"""

import contextlib
import warnings

with contextlib.suppress(ImportError), warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import openstack.version  # noqa: F401
