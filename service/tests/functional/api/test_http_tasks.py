"""``/v2/tasks`` (admin only by default) and the task schemas, against real processes."""

from __future__ import annotations

import pytest

from tests.functional.api.import_helpers import DataServer, wait_task


@pytest.fixture(scope="module")
def web():
    server = DataServer()
    yield server
    server.stop()


def import_task(uri: str, **props) -> dict:
    return {
        "type": "import",
        "input": {
            "import_from": uri,
            "import_from_format": "raw",
            "image_properties": {"name": "from-task", "container_format": "bare", **props},
        },
    }


def test_tasks_api_is_admin_only(http):
    assert http.get("/v2/tasks").status_code == 403
    assert http.post("/v2/tasks", json=import_task("http://127.0.0.1/x")).status_code == 403
    assert http.get("/v2/tasks/0c7f3a6e-1d2b-4c5e-8f90-a1b2c3d4e5f6").status_code == 403


def test_task_schemas(http):
    task = http.get("/v2/schemas/task").json()
    assert task["name"] == "task"
    assert {"id", "type", "status", "input", "result", "owner", "message"} <= set(task["properties"])
    tasks = http.get("/v2/schemas/tasks").json()
    assert tasks["name"] == "tasks" and tasks["properties"]["tasks"]["items"]["name"] == "task"
    assert http.get("/v2/schemas/task", data=b"x").status_code == 400


def test_delete_is_always_405(admin):
    resp = admin.delete("/v2/tasks/0c7f3a6e-1d2b-4c5e-8f90-a1b2c3d4e5f6")
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "GET"


def test_unknown_task_404(admin):
    assert admin.get("/v2/tasks/0c7f3a6e-1d2b-4c5e-8f90-a1b2c3d4e5f6").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"type": "import"},
        {"type": "export", "input": {}},
        {"type": "import", "input": "x"},
        {"type": "import", "input": {"import_from": "http://127.0.0.1/x"}},
        {
            "type": "import",
            "input": {"import_from": "x", "import_from_format": "raw", "image_properties": {}},
        },
        {"type": "import", "input": {}, "status": "success"},
    ],
)
def test_create_400(admin, body):
    assert admin.post("/v2/tasks", json=body).status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        "status=bogus",
        "type=api_image_import",
        "sort_key=name",
        "sort_dir=up",
        "marker=nope",
        "limit=x",
        "limit=-1",
    ],
)
def test_list_400(admin, query):
    assert admin.get(f"/v2/tasks?{query}").status_code == 400


def test_legacy_import_task_creates_an_image(glance, admin, web):
    # the metadata service is refused by the import filters (link-local) before any task
    resp = admin.post("/v2/tasks", json=import_task("http://169.254.169.254/latest/t.raw"))
    assert resp.status_code == 400  # filtered before the task is created
    resp = admin.post("/v2/tasks", json=import_task("http://127.0.0.1/unreachable.raw"))
    assert resp.status_code == 201, resp.text
    task = resp.json()
    assert resp.headers["Location"].endswith(f"/v2/tasks/{task['id']}")
    assert task["type"] == "import" and task["status"] in ("pending", "processing", "failure")
    assert task["self"] == f"/v2/tasks/{task['id']}" and task["schema"] == "/v2/schemas/task"
    assert task["input"]["import_from"] == "http://127.0.0.1/unreachable.raw"
    done = wait_task(admin, task["id"])
    assert done["status"] == "failure" and done["message"]
    assert done["expires_at"].endswith("Z")
    image = admin.get(f"/v2/images/{done['image_id']}").json()
    assert image["status"] == "queued" and image["name"] == "from-task"


def test_list_stubs_filters_and_paging(admin):
    ids = []
    for _ in range(3):
        resp = admin.post("/v2/tasks", json=import_task("http://127.0.0.1/unreachable.raw"))
        ids.append(resp.json()["id"])
    for task_id in ids:
        wait_task(admin, task_id)
    listing = admin.get("/v2/tasks?limit=2&type=import").json()
    assert listing["schema"] == "/v2/schemas/tasks"
    assert listing["first"] == "/v2/tasks?limit=2&type=import"
    assert len(listing["tasks"]) == 2 and "next" in listing
    stub = listing["tasks"][0]
    assert "input" not in stub and "result" not in stub and stub["self"].startswith("/v2/tasks/")
    nxt = admin.get(listing["next"]).json()
    assert not {t["id"] for t in nxt["tasks"]} & {t["id"] for t in listing["tasks"]}
    failed = admin.get("/v2/tasks?status=failure&sort_dir=asc&limit=1000").json()["tasks"]
    assert set(ids) <= {t["id"] for t in failed}
    assert admin.get("/v2/tasks?status=success&type=import").status_code == 200
