"""Prometheus metrics of real glance-api and glance-registry processes (issue 18).

Both services with ``[metrics] enable_prometheus`` and two workers each, so the values of several
processes are summed (prometheus_client's multiprocess mode); the metrics are scraped before
and after uploads, downloads and failures, and the counters must have moved by exactly what
was done: bytes equal to the data sizes, one request per status and route.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.glance_procs import free_port, start_glance
from tests.functional.api.import_helpers import DataServer, wait_image
from tests.functional.conftest import Http
from tests.functional.data.helpers import OCTET, RawUpload, wait_for

FILE = "/v2/images/{image_id}/file"
IMAGE = "/v2/images/{image_id}"


@pytest.fixture(scope="module")
def procs(tmp_path_factory):
    work = tmp_path_factory.mktemp("metrics")
    api_dir, registry_dir = work / "api-metrics", work / "registry-metrics"
    for directory in (api_dir, registry_dir):
        directory.mkdir()
        # A previous run's values: the master empties the directory before any worker starts.
        (directory / "counter_1.db").write_bytes(b"stale")
    ports = {"api": free_port(), "registry": free_port()}
    glance = start_glance(
        work,
        workers=2,
        extra_api={
            "DEFAULT": {"registry_client_timeout": 3},
            "import_filtering_opts": {"allowed_hosts": "[127.0.0.1]", "allowed_ports": "[]"},
            "metrics": {"enable_prometheus": True, "port": ports["api"], "multiproc_dir": str(api_dir)},
        },
        extra_registry={
            "metrics": {
                "enable_prometheus": True,
                "port": ports["registry"],
                "multiproc_dir": str(registry_dir),
            }
        },
    )
    glance.metrics_ports = ports
    glance.metrics_dirs = {"api": api_dir, "registry": registry_dir}
    yield glance
    glance.stop()


@pytest.fixture
def http(procs) -> Http:
    return Http(procs.api_url)


class Samples(dict):
    """One scrape: ``(name, labels) -> value``."""

    def value(self, name: str, **labels) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels``."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.items() if n == name and wanted <= set(ls))


def scrape(procs, service: str) -> Samples:
    resp = requests.get(f"http://127.0.0.1:{procs.metrics_ports[service]}/metrics", timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain")
    samples = Samples()
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def delta(before: Samples, after: Samples, name: str, **labels) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


def new_image(http: Http) -> str:
    return http.create_image(disk_format="raw", container_format="bare")["id"]


def test_the_master_emptied_the_directory_of_a_previous_run(procs):
    for directory in procs.metrics_dirs.values():
        assert not (directory / "counter_1.db").exists()


def test_the_metrics_socket_serves_only_the_metrics_and_the_api_port_none(procs, http):
    port = procs.metrics_ports["api"]
    assert (
        requests.get(f"http://127.0.0.1:{port}/v2/images", headers=http.headers(), timeout=10).status_code
        == 404
    )
    assert requests.get(f"http://127.0.0.1:{port}/healthcheck", timeout=10).status_code == 404
    # The API port has no metrics path (version negotiation's 300), whatever the Host header says.
    on_api = http.get("/metrics", headers={"Host": f"127.0.0.1:{port}"})
    assert on_api.status_code == 300
    assert "glance_http_requests_total" not in on_api.text
    registry = requests.get(f"http://127.0.0.1:{procs.metrics_ports['registry']}/metrics", timeout=10)
    assert registry.status_code == 200


def test_upload_and_download_move_the_counters_by_the_data_size(procs, http):
    size = 3 * 1024 * 1024 + 123
    data = os.urandom(size)
    before_api, before_reg = scrape(procs, "api"), scrape(procs, "registry")

    image_id = new_image(http)
    assert http.put(f"/v2/images/{image_id}/file", data=data, headers=OCTET).status_code == 204
    for _ in range(3):
        # New connections: the downloads land on either worker, the sums cover both.
        got = requests.get(f"{procs.api_url}/v2/images/{image_id}/file", headers=http.headers(), timeout=30)
        assert got.status_code == 200 and got.content == data
    ranged = http.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.content) == 100

    api, reg = scrape(procs, "api"), scrape(procs, "registry")
    assert delta(before_api, api, "glance_image_uploaded_bytes_total") == size
    assert delta(before_api, api, "glance_image_downloaded_bytes_total") == 3 * size + 100
    requests_total = "glance_http_requests_total"
    assert delta(before_api, api, requests_total, route="/v2/images", method="POST", status="201") == 1
    assert delta(before_api, api, requests_total, route=FILE, method="PUT", status="204") == 1
    assert delta(before_api, api, requests_total, route=FILE, method="GET", status="200") == 3
    assert delta(before_api, api, requests_total, route=FILE, method="GET", status="206") == 1
    duration = "glance_http_request_duration_seconds"
    assert delta(before_api, api, f"{duration}_count", route=FILE, method="GET") == 4
    assert delta(before_api, api, f"{duration}_bucket", route=FILE, method="GET", le="+Inf") == 4
    assert delta(before_api, api, f"{duration}_sum", route=FILE, method="PUT") > 0
    store = "glance_store_operation_duration_seconds_count"
    assert delta(before_api, api, store, store="file", operation="add") == 1
    assert delta(before_api, api, store, store="file", operation="open") == 4
    assert delta(before_api, api, "glance_store_operation_errors_total") == 0
    assert api.value("glance_uploads_in_progress") == 0
    calls = "glance_registry_client_call_duration_seconds_count"
    assert delta(before_api, api, calls, operation="image_create") == 1
    assert delta(before_api, api, calls, operation="image_activate") == 1
    assert delta(before_api, api, "glance_registry_client_call_errors_total") == 0

    # The registry: calls by operation and status, with their latency; images by status.
    assert delta(before_reg, reg, requests_total, route="image_create", method="POST", status="200") == 1
    assert delta(before_reg, reg, requests_total, route="image_activate", status="200") == 1
    assert delta(before_reg, reg, f"{duration}_count", route="image_create") == 1
    assert delta(before_reg, reg, "glance_images", status="active") == 1
    assert reg.value("glance_images_oldest_update_age_seconds", status="active") >= 0


def test_failures_are_counted_by_status(procs, http):
    before_api, before_reg = scrape(procs, "api"), scrape(procs, "registry")
    missing = str(uuid.uuid4())
    assert http.get(f"/v2/images/{missing}").status_code == 404
    assert http.get("/v2/no-such-thing").status_code == 404
    # A failed upload: fewer bytes than announced (400); the bytes received still count.
    image_id = new_image(http)
    short = http.put(
        f"/v2/images/{image_id}/file",
        data=iter([b"x" * 600, b"x" * 400]),  # chunked: the size is known at the end only
        headers={**OCTET, "x-openstack-image-size": "2000"},
    )
    assert short.status_code == 400, short.text

    api, reg = scrape(procs, "api"), scrape(procs, "registry")
    requests_total = "glance_http_requests_total"
    assert delta(before_api, api, requests_total, route=IMAGE, method="GET", status="404") == 1
    assert delta(before_api, api, requests_total, route="other", method="GET", status="404") == 1
    assert delta(before_api, api, requests_total, route=FILE, method="PUT", status="400") == 1
    assert delta(before_api, api, "glance_image_uploaded_bytes_total") == 1000
    # The client's mistake is not the store's failure, a missing image not the registry's.
    assert delta(before_api, api, "glance_store_operation_errors_total") == 0
    assert delta(before_api, api, "glance_registry_client_call_errors_total") == 0
    assert delta(before_reg, reg, requests_total, route="image_get", status="404") == 1


def test_a_failing_store_is_counted_as_a_store_error(procs, http):
    datadir = Path(procs.datadir)
    image_id = new_image(http)
    before = scrape(procs, "api")
    moved = datadir.with_name("images-away")
    datadir.rename(moved)
    datadir.write_text("not a directory")
    try:
        resp = http.put(f"/v2/images/{image_id}/file", data=b"y" * 4096, headers=OCTET)
    finally:
        datadir.unlink()
        moved.rename(datadir)
    assert resp.status_code >= 500, resp.text
    after = scrape(procs, "api")
    assert delta(before, after, "glance_store_operation_errors_total", store="file", operation="add") == 1
    assert delta(before, after, "glance_http_requests_total", route=FILE, status=str(resp.status_code)) == 1


def test_a_registry_down_is_counted_by_operation(procs, http):
    image_id = new_image(http)
    before = scrape(procs, "api")
    procs.kill_registry()
    try:
        assert http.get(f"/v2/images/{image_id}").status_code == 503
    finally:
        procs.start_registry()
    after = scrape(procs, "api")
    assert delta(before, after, "glance_registry_client_call_errors_total", operation="image_get") == 1
    assert (
        delta(before, after, "glance_registry_client_call_duration_seconds_count", operation="image_get") == 1
    )
    assert delta(before, after, "glance_http_requests_total", route=IMAGE, method="GET", status="503") == 1
    # The registry restarted: its own directory was emptied and it counts from zero again.
    assert scrape(procs, "registry").value("glance_http_requests_total", route="image_get") == 0


def _children(pid: int) -> set[int]:
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def test_uploads_in_progress_is_a_live_sum_of_the_workers(procs, http):
    image_id = new_image(http)
    raw = RawUpload(procs.api_url, image_id, http.headers(), length=4 * 1024 * 1024)
    try:
        raw.send(b"z" * (1024 * 1024))
        wait_for(lambda: scrape(procs, "api").value("glance_uploads_in_progress") == 1)
        # The workers that hold live values (the uploading one among them) die: gunicorn's
        # child_exit hook removes their files, and the sum counts only live workers again.
        live = {
            int(name.removeprefix("gauge_livesum_").removesuffix(".db"))
            for name in os.listdir(procs.metrics_dirs["api"])
            if name.startswith("gauge_livesum_")
        }
        workers = live & _children(procs.api.pid)
        assert workers
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
    finally:
        raw.close()
    wait_for(lambda: _scrape_or_none(procs) == 0, timeout=30)
    assert not workers & _children(procs.api.pid)


def _scrape_or_none(procs) -> float | None:
    try:
        return scrape(procs, "api").value("glance_uploads_in_progress")
    except (requests.RequestException, AssertionError):
        time.sleep(0.2)
        return None


def test_a_reload_keeps_the_socket_and_the_counts(procs, http):
    image_id = new_image(http)
    counted = scrape(procs, "api").value(
        "glance_http_requests_total", route=IMAGE, method="GET", status="200"
    )
    assert http.get(f"/v2/images/{image_id}").status_code == 200

    def with_that_get():
        # A request is counted after its response went out: the scrape must include it.
        now = scrape(procs, "api")
        got = now.value("glance_http_requests_total", route=IMAGE, method="GET", status="200")
        return now if got >= counted + 1 else None

    before = wait_for(with_that_get)
    old_workers = _children(procs.api.pid)
    os.kill(procs.api.pid, signal.SIGHUP)
    wait_for(lambda: not (old_workers & _children(procs.api.pid)), timeout=60)
    assert http.get(f"/v2/images/{image_id}").status_code == 200
    after = scrape(procs, "api")
    # The replaced workers' counts stay (their files), the new workers add theirs.
    assert delta(before, after, "glance_http_requests_total", route=IMAGE, method="GET", status="200") == 1


def test_stage_and_imports_are_counted(procs, http):
    data = os.urandom(300_000)
    before = scrape(procs, "api")
    staged = new_image(http)
    assert http.put(f"/v2/images/{staged}/stage", data=data, headers=OCTET).status_code == 204
    assert (
        http.post(f"/v2/images/{staged}/import", json={"method": {"name": "glance-direct"}}).status_code
        == 202
    )
    assert wait_image(http, staged)["status"] == "active"

    server = DataServer()
    server.files["slow.raw"] = data
    try:
        fetched = new_image(http)
        body = {"method": {"name": "web-download", "uri": f"http://127.0.0.1:{server.port}/slow/slow.raw"}}
        assert http.post(f"/v2/images/{fetched}/import", json=body).status_code == 202
        # Held in the middle of its download: one import in progress, in whichever worker.
        wait_for(lambda: scrape(procs, "api").value("glance_imports_in_progress") == 1)
        server.release()
        assert wait_image(http, fetched)["status"] == "active"
    finally:
        server.stop()
    after = scrape(procs, "api")
    assert after.value("glance_imports_in_progress") == 0
    # Staging is data received from the client; an import's download is not an upload.
    assert delta(before, after, "glance_image_uploaded_bytes_total") == len(data)
    store = "glance_store_operation_duration_seconds_count"
    # Both staged: the client's PUT /stage, and web-download's fetch (staged first, as in Glance).
    assert delta(before, after, store, store="os_glance_staging_store", operation="stage") == 2
    assert delta(before, after, store, store="file", operation="add") == 2
    requests_total = "glance_http_requests_total"
    stage_route = "/v2/images/{image_id}/stage"
    assert delta(before, after, requests_total, route=stage_route, method="PUT", status="204") == 1
    assert delta(before, after, requests_total, route="/v2/images/{image_id}/import", status="202") == 2


def test_the_api_that_holds_the_database_counts_the_images(tmp_path):
    # data_api = database: no registry to ask, glance-api's own metrics carry glance_images.
    port = free_port()
    glance = start_glance(
        tmp_path,
        data_api="database",
        workers=1,
        extra_api={"metrics": {"enable_prometheus": True, "port": port}},
    )
    try:
        glance.metrics_ports = {"api": port}
        http = Http(glance.api_url)
        image_id = new_image(http)
        assert http.put(f"/v2/images/{image_id}/file", data=b"d" * 2048, headers=OCTET).status_code == 204
        new_image(http)
        samples = scrape(glance, "api")
        assert samples.value("glance_images", status="active") == 1
        assert samples.value("glance_images", status="queued") == 1
        assert samples.value("glance_image_uploaded_bytes_total") == 2048
        assert samples.value("glance_registry_client_call_duration_seconds_count") == 0
    finally:
        glance.stop()


def _get_closed(procs, http, path: str) -> int:
    headers = http.headers({"Connection": "close"})  # a new connection: any worker may take it
    return requests.get(f"{procs.api_url}{path}", headers=headers, timeout=10).status_code


def test_the_scrape_sums_every_workers_values(procs, http):
    # Each worker in turn is stopped (SIGSTOP: it accepts nothing) so the other serves: the
    # scrape, answered by one of them, must count what both served.
    image_id = new_image(http)
    first, second = sorted(_children(procs.api.pid))
    before = scrape(procs, "api")
    for stopped, count in ((first, 3), (second, 2)):
        os.kill(stopped, signal.SIGSTOP)
        try:
            for _ in range(count):
                assert _get_closed(procs, http, f"/v2/images/{image_id}") == 200
            if stopped == second:
                after = scrape(procs, "api")  # answered by ``first``
        finally:
            os.kill(stopped, signal.SIGCONT)
    assert delta(before, after, "glance_http_requests_total", route=IMAGE, method="GET", status="200") == 5
    names = set(os.listdir(procs.metrics_dirs["api"]))
    assert {f"counter_{first}.db", f"counter_{second}.db"} <= names
