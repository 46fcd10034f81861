"""An operator's ``[oslo_policy] policy_file`` changes what the running service allows: here
readers may download, and only admins may share."""

from __future__ import annotations

import pytest

from tests.fixtures.glance_procs import start_glance
from tests.functional.conftest import Http
from tests.functional.data.helpers import OCTET

POLICY = """\
"download_image": "role:reader"
"add_member": "role:admin"
"""


@pytest.fixture(scope="module")
def policy_glance(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("glance-policy")
    policy_file = workdir / "policy.yaml"
    policy_file.write_text(POLICY)
    procs = start_glance(workdir, workers=1, extra_api={"oslo_policy": {"policy_file": str(policy_file)}})
    yield procs
    procs.stop()


def _active_image(h: Http, data: bytes = b"policy data") -> str:
    image_id = h.create_image(disk_format="raw", container_format="bare", visibility="shared")["id"]
    resp = h.put(f"/v2/images/{image_id}/file", data=data, headers=OCTET)
    assert resp.status_code == 204, resp.text
    return image_id


def test_default_policy_refuses_reader_download(glance):
    owner = Http(glance.api_url)
    image_id = _active_image(owner)
    reader = owner.as_other(project=owner.project, roles="reader")
    assert reader.get(f"/v2/images/{image_id}").status_code == 200
    assert reader.get(f"/v2/images/{image_id}/file").status_code == 403


def test_policy_file_lets_readers_download(policy_glance):
    owner = Http(policy_glance.api_url)
    image_id = _active_image(owner, b"readable by readers")
    reader = owner.as_other(project=owner.project, roles="reader")
    resp = reader.get(f"/v2/images/{image_id}/file")
    assert resp.status_code == 200 and resp.content == b"readable by readers"
    # rules the file does not name keep their defaults: the reader still cannot write
    assert reader.delete(f"/v2/images/{image_id}").status_code == 403


def test_policy_file_restricts_sharing_to_admins(policy_glance):
    owner = Http(policy_glance.api_url)
    image_id = owner.create_image(visibility="shared")["id"]
    friend = owner.as_other()
    path = f"/v2/images/{image_id}/members"
    assert owner.post(path, json={"member": friend.project}).status_code == 403
    admin = Http(policy_glance.api_url, roles="admin,member,reader")
    assert admin.post(path, json={"member": friend.project}).status_code == 200
    # the member's own rule (modify_member) is untouched
    resp = friend.put(f"{path}/{friend.project}", json={"status": "accepted"})
    assert resp.status_code == 200 and resp.json()["status"] == "accepted"
