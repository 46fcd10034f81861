"""The committed sample configs are what oslo-config-generator produces from the code now.

Regenerate after changing an option:
    cd service && oslo-config-generator --config-file etc/oslo-config-generator/glance-api.conf
    cd service && oslo-config-generator --config-file etc/oslo-config-generator/glance-registry.conf
"""

import subprocess
import sys
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[3]
GENERATOR = Path(sys.executable).parent / "oslo-config-generator"


@pytest.mark.parametrize("name", ["glance-api", "glance-registry"])
def test_sample_is_current(name, tmp_path):
    out = tmp_path / f"{name}.conf.sample"
    subprocess.run(
        [
            str(GENERATOR),
            "--config-file",
            f"etc/oslo-config-generator/{name}.conf",
            "--output-file",
            str(out),
        ],
        cwd=SERVICE,
        check=True,
        capture_output=True,
    )
    committed = (SERVICE / "etc" / f"{name}.conf.sample").read_text()
    assert out.read_text() == committed, (
        f"etc/{name}.conf.sample is stale: regenerate it (see this test's docstring)"
    )


def test_api_sample_has_the_api_options():
    text = (SERVICE / "etc" / "glance-api.conf.sample").read_text()
    for option in (
        "#data_api = registry",
        "#limit_param_default = 25",
        "#api_limit_max = 1000",
        "#show_multiple_locations = false",
        "#image_size_cap = 1099511627776",
        "#public_endpoint",
        "#disk_formats = ami,ari,aki,vhd,vhdx,vmdk,raw,qcow2,vdi,iso,ploop",
        "#policy_file",
        "#www_authenticate_uri",
        "#filesystem_store_datadir",
    ):
        assert option in text, option
