"""A failed upload's end when the registry could not confirm it (api/upload_recovery.py):
``_undo`` hands it to the reconciler, which settles it once the data API answers: the data is
kept only when the registry recorded it, the image never ends ``active`` without its data."""

from __future__ import annotations

import copy
import time

import pytest

from glance_service import exceptions
from glance_service.api import image_data, upload_recovery
from glance_service.context import RequestContext

URL = "file:///srv/images/img-1"
OURS = upload_recovery.upload_marker()[upload_recovery.UPLOAD_HOST]


class FakeData:
    """One image; ``down`` calls fail with RegistryUnavailable first (a registry that is
    back after that many attempts)."""

    def __init__(self, image: dict | None, down: int = 0):
        self.image = image
        self.down = down
        self.calls: list[str] = []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.down > 0:
            self.down -= 1
            raise exceptions.RegistryUnavailable("The image registry is unavailable: refused")

    def image_get(self, ctx, image_id, include_deleted=False):
        self._call("image_get")
        if self.image is None:
            raise exceptions.ImageNotFound()
        return copy.deepcopy(self.image)

    def image_update(self, ctx, image_id, values, purge_props=False, from_state=None):
        self._call("image_update")
        if self.image is None:
            raise exceptions.ImageNotFound()
        if from_state is not None and self.image["status"] != from_state:
            raise exceptions.ImageStatusConflict()
        self.image.update({k: v for k, v in values.items() if k != "properties"})
        return copy.deepcopy(self.image)

    def image_location_delete(self, ctx, image_id, location_id, status="deleted"):
        self._call("image_location_delete")
        self.image["locations"] = [loc for loc in self.image["locations"] if loc["id"] != location_id]


class FakeStores:
    def __init__(self):
        self.data = {URL}
        self.discarded: list[str] = []

    def delete(self, url, backend=None):
        self.data.discard(url)

    def discard(self, image_id):
        self.discarded.append(image_id)


class Svc:
    def __init__(self, data: FakeData):
        self.data = data
        self.stores = FakeStores()


def image(status="saving", marker=OURS, locations=()):
    return {
        "id": "img-1",
        "status": status,
        "deleted": False,
        "size": 5 if status == "active" else None,
        "properties": {upload_recovery.UPLOAD_HOST: marker} if marker else {},
        "locations": [{"id": 7, "url": url, "metadata": {}, "status": "active"} for url in locations],
    }


def leftover(svc):
    return upload_recovery.Leftover(svc, "img-1", URL, OURS)


def test_recorded_by_the_registry_keeps_the_data():
    # The activation committed, but its answer was lost (the registry died after the commit).
    svc = Svc(FakeData(image("active", locations=[URL])))
    assert "recorded" in leftover(svc).settle()
    assert svc.data.image["status"] == "active"
    assert svc.stores.data == {URL} and svc.stores.discarded == []


def test_not_recorded_removes_the_data_and_returns_to_queued():
    svc = Svc(FakeData(image("saving")))
    assert "queued" in leftover(svc).settle()
    assert (svc.data.image["status"], svc.data.image["size"]) == ("queued", None)
    assert svc.stores.data == set() and svc.stores.discarded == ["img-1"]


def test_location_without_the_final_update_is_removed_too():
    # The two-call path (no image_activate): the location went in, the update did not.
    svc = Svc(FakeData(image("saving", locations=[URL])))
    leftover(svc).settle()
    assert svc.data.image["status"] == "queued" and svc.data.image["locations"] == []
    assert svc.stores.data == set()


class LateActivation(FakeData):
    """A registry that stalled with the activation queued: it lands between the reconciler's
    read (still 'saving') and its reset (seen in a real run with SIGSTOP/SIGCONT)."""

    def image_update(self, ctx, image_id, values, purge_props=False, from_state=None):
        if self.image["status"] == "saving" and values.get("status") == "queued":
            self.image.update(status="active", size=5, locations=[{"id": 7, "url": URL, "metadata": {}}])
        return super().image_update(ctx, image_id, values, purge_props, from_state)


def test_an_activation_that_lands_during_the_settle_keeps_its_data():
    # The finalisation timed out: the stalled registry may still run it (reset first).
    svc = Svc(LateActivation(image("saving")))
    job = leftover(svc)
    job.reset_first = True
    assert "recorded" in job.settle()
    assert svc.data.image["status"] == "active"
    assert svc.stores.data == {URL} and svc.stores.discarded == []


def test_after_the_reset_a_retry_only_removes_what_is_left():
    # The reset went through, then the registry went away before the data was removed.
    svc = Svc(FakeData(image("saving", locations=[URL])))
    job = leftover(svc)
    job.reset_first = True
    svc.stores.delete = lambda url, backend=None: (_ for _ in ()).throw(OSError("store away"))
    with pytest.raises(OSError):
        job.settle()
    assert svc.data.image["status"] == "queued"
    del svc.stores.delete
    assert "queued" in job.settle()
    assert svc.data.image["locations"] == [] and svc.stores.data == set()


@pytest.mark.parametrize("gone", [None, "deleted"])
def test_deleted_image_has_its_data_removed(gone):
    svc = Svc(FakeData(None if gone is None else {**image("deleted"), "deleted": True}))
    leftover(svc).settle()
    assert svc.stores.data == set()


@pytest.mark.parametrize(
    "taken", [image("queued", marker=None), image("saving", marker="otherhost:1:1"), image("importing")]
)
def test_an_image_taken_over_by_another_process_is_left_alone(taken):
    svc = Svc(FakeData(taken))
    before = copy.deepcopy(taken)
    assert "another process" in leftover(svc).settle()
    assert svc.data.image == before
    assert svc.stores.data == {URL} and svc.stores.discarded == []


class Stored:
    url = URL


@pytest.fixture
def reconciler(monkeypatch):
    monkeypatch.setattr(upload_recovery.Reconciler, "FIRST_DELAY", 0.01)
    monkeypatch.setattr(upload_recovery.Reconciler, "MAX_DELAY", 0.05)
    fresh = upload_recovery.Reconciler()
    monkeypatch.setattr(upload_recovery, "_RECONCILER", fresh)
    return fresh


def wait_done(reconciler, timeout=5.0):
    deadline = time.monotonic() + timeout
    while reconciler.pending():
        assert time.monotonic() < deadline, "the reconciler did not finish"
        time.sleep(0.01)


def test_unknown_activation_outcome_keeps_the_data_until_the_registry_answers(reconciler):
    """The activation's answer was lost and it had committed: the data must not be removed
    in the request (the old behaviour left an active image without data)."""
    svc = Svc(FakeData(image("active", locations=[URL]), down=3))
    cause = exceptions.RegistryUnavailable("The connection to the image registry broke")
    image_data._undo(svc, RequestContext.admin(), "img-1", Stored(), None, cause, finalising=True)
    assert svc.stores.data == {URL}
    wait_done(reconciler)
    assert svc.data.calls.count("image_get") == 4  # three refused, then answered
    assert svc.data.image["status"] == "active" and svc.stores.data == {URL}


def test_registry_down_during_the_upload_is_finished_when_it_is_back(reconciler):
    svc = Svc(FakeData(image("saving"), down=5))
    cause = exceptions.RegistryUnavailable("The image registry is unavailable: refused")
    image_data._undo(svc, RequestContext.admin(), "img-1", Stored(), None, cause, finalising=True)
    wait_done(reconciler)
    assert svc.data.image["status"] == "queued" and svc.stores.data == set()


def test_known_failure_is_undone_in_the_request():
    svc = Svc(FakeData(image("saving")))
    cause = exceptions.InvalidImageData("not a qcow2")
    image_data._undo(svc, RequestContext.admin(), "img-1", Stored(), None, cause, finalising=False)
    assert svc.data.image["status"] == "queued" and svc.stores.data == set()
    assert svc.data.calls == ["image_update"]  # no extra registry call when all goes well


def test_known_failure_whose_undo_fails_goes_to_the_reconciler(reconciler):
    # The store rejects the upload, and the registry dies before the image is given back.
    svc = Svc(FakeData(image("saving"), down=2))
    cause = exceptions.StoreUnavailable("rbd is down")
    image_data._undo(svc, RequestContext.admin(), "img-1", Stored(), None, cause, finalising=False)
    wait_done(reconciler)
    assert svc.data.image["status"] == "queued" and svc.stores.data == set()


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_heartbeat_rides_out_a_registry_restart_but_stops_on_a_reset(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(image_data.time, "monotonic", clock)
    svc = Svc(FakeData(image("saving"), down=1))
    svc.conf = type("Conf", (), {"upload_stale_timeout": 60})()  # every 15 s
    beat = image_data._heartbeat(svc, RequestContext.admin(), "img-1")
    beat()
    assert svc.data.calls == []
    clock.now += 15
    beat()  # the registry is down: the upload goes on
    assert svc.data.calls == ["image_update"]
    clock.now += 5
    beat()
    assert svc.data.calls == ["image_update"]  # tried again after HEARTBEAT_RETRY (10 s), not at once
    clock.now += 10
    beat()
    assert svc.data.calls == ["image_update"] * 2
    svc.data.image["status"] = "queued"  # reset by another process: the upload must stop
    clock.now += 15
    with pytest.raises(exceptions.ImageStatusConflict):
        beat()
