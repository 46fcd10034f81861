"""Loaded (through PYTHONPATH) only by the openstack.cloud module processes of the registration.

openstack.cloud 2.5 (the `ansible` 12 package) reads ``openstack.version.__version__`` after a
bare ``import openstack``; openstacksdk 4.22 no longer imports that submodule itself, so every
module fails with "module 'openstack' has no attribute 'version'". Importing it here first
restores what the collection expects. Remove once the collection imports it itself.
"""

import contextlib
import warnings

with contextlib.suppress(ImportError), warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import openstack.version  # noqa: F401
