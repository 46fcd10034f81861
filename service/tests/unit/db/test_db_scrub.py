"""Delayed delete and the scrubber over the real DatabaseAPI and real files, on both backends."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from glance_service import exceptions
from glance_service.db.models import Image, ImageLocation, ImageProperty
from glance_service.images.scrubber import Scrubber
from glance_service.store import filesystem


class FileData:
    """Image data as real files; deletes through the file store's own ``delete_url``."""

    def __init__(self, root):
        self.root = root
        self.fail = False
        self.refuse: set[str] = set()
        self.backends: list[str | None] = []

    def put(self, name: str) -> str:
        path = self.root / name
        path.write_bytes(b"data of " + name.encode())
        return "file://" + str(path)

    def delete(self, url: str, backend: str | None = None) -> None:
        self.backends.append(backend)
        if self.fail:
            raise exceptions.StoreUnavailable("the store is down")
        if url in self.refuse:
            raise exceptions.InUseByStore("the rbd snapshot has clones")
        filesystem.delete_url(url)


class Crash(BaseException):
    """Stands for the process dying (not an Exception: nothing catches it)."""


class CrashAfterFirst(FileData):
    def __init__(self, root):
        super().__init__(root)
        self.deleted = 0

    def delete(self, url: str, backend: str | None = None) -> None:
        filesystem.delete_url(url)
        self.deleted += 1
        raise Crash()


@pytest.fixture
def files(tmp_path) -> FileData:
    return FileData(tmp_path)


def _image_with_data(dbapi, ctx, files, copies: int = 2, stores=None) -> tuple[dict, list[str]]:
    image = dbapi.image_create(ctx, {"status": "active", "properties": {"k": "v"}, "tags": ["t"]})
    urls = [files.put(f"{image['id']}-{i}") for i in range(copies)]
    for i, url in enumerate(urls):
        dbapi.image_location_add(ctx, image["id"], url, {"store": stores[i]} if stores else {})
    return image, urls


def _row(dbapi, image_id):
    with dbapi.db.reader() as s:
        image = s.execute(sa.select(Image.__table__).where(Image.__table__.c.id == image_id)).one()
        locs = s.execute(
            sa.select(ImageLocation.__table__.c.status).where(ImageLocation.__table__.c.image_id == image_id)
        ).scalars()
        props = s.execute(
            sa.select(ImageProperty.__table__.c.deleted).where(ImageProperty.__table__.c.image_id == image_id)
        ).scalars()
        return image, sorted(locs), list(props)


def _exists(url: str) -> bool:
    import os

    return os.path.exists(url[len("file://") :])


def test_pending_delete_keeps_data_and_hides_the_image(dbapi, alice, admin, files):
    image, urls = _image_with_data(dbapi, alice, files)
    before = dbapi.image_pending_delete(alice, image["id"])
    assert before["status"] == "active" and len(before["locations"]) == 2
    with pytest.raises(exceptions.ImageNotFound):
        dbapi.image_get(alice, image["id"])
    row, locs, _ = _row(dbapi, image["id"])
    assert (row.status, row.deleted, locs) == ("pending_delete", True, ["pending_delete", "pending_delete"])
    assert all(_exists(u) for u in urls)
    listed = dbapi.image_scrub_list(admin)
    assert [i["id"] for i in listed] == [image["id"]] and len(listed[0]["locations"]) == 2


def test_scrub_removes_data_then_image_ends_deleted(dbapi, alice, admin, files):
    image, urls = _image_with_data(dbapi, alice, files)
    dbapi.image_pending_delete(alice, image["id"])
    counts = Scrubber(dbapi, files).run_once()
    assert counts == {"images": 1, "locations": 2, "failed": 0, "skipped": 0}
    assert not any(_exists(u) for u in urls)
    row, locs, props = _row(dbapi, image["id"])
    assert row.status == "deleted" and locs == ["deleted", "deleted"] and props == [True]
    assert dbapi.image_scrub_list(admin) == []
    assert Scrubber(dbapi, files).run_once()["images"] == 0


def test_scrub_time_is_respected(dbapi, alice, files):
    image, urls = _image_with_data(dbapi, alice, files)
    dbapi.image_pending_delete(alice, image["id"])
    assert Scrubber(dbapi, files, scrub_time=3600).run_once()["images"] == 0
    assert all(_exists(u) for u in urls)


def test_restore_before_scrubbing(dbapi, alice, admin, files):
    image, urls = _image_with_data(dbapi, alice, files)
    dbapi.image_pending_delete(alice, image["id"])
    with pytest.raises(exceptions.Forbidden):
        dbapi.image_restore(alice, image["id"])
    restored = Scrubber(dbapi, files).restore(image["id"])
    assert restored["status"] == "active" and [loc["url"] for loc in restored["locations"]] == urls
    assert dbapi.image_get(alice, image["id"])["properties"] == {"k": "v"}
    assert Scrubber(dbapi, files).run_once()["images"] == 0
    assert all(_exists(u) for u in urls)
    with pytest.raises(exceptions.ImageStatusConflict):
        dbapi.image_restore(admin, image["id"])


def test_claim_is_won_once_and_blocks_restore(dbapi, alice, admin, files):
    image, _ = _image_with_data(dbapi, alice, files)
    dbapi.image_pending_delete(alice, image["id"])
    assert dbapi.image_scrub_claim(admin, image["id"]) is True
    assert dbapi.image_scrub_claim(admin, image["id"]) is False
    with pytest.raises(exceptions.ImageStatusConflict):
        dbapi.image_restore(admin, image["id"])


def test_scrubbing_needs_admin(dbapi, alice):
    with pytest.raises(exceptions.Forbidden):
        dbapi.image_scrub_list(alice)


def test_crash_mid_scrub_is_finished_by_the_next_run(dbapi, alice, tmp_path):
    crashing = CrashAfterFirst(tmp_path)
    image, urls = _image_with_data(dbapi, alice, crashing, copies=3)
    dbapi.image_pending_delete(alice, image["id"])
    with pytest.raises(Crash):
        Scrubber(dbapi, crashing).run_once()
    row, locs, _ = _row(dbapi, image["id"])
    # claimed, one copy's data gone but its location not yet marked: all still listed
    assert row.status == "deleted" and locs.count("pending_delete") == 3
    assert sum(_exists(u) for u in urls) == 2
    counts = Scrubber(dbapi, FileData(tmp_path)).run_once()
    assert counts["locations"] == 3 and counts["failed"] == 0
    assert not any(_exists(u) for u in urls)
    assert _row(dbapi, image["id"])[1] == ["deleted"] * 3


def test_store_failure_keeps_location_for_the_next_run(dbapi, alice, files):
    image, urls = _image_with_data(dbapi, alice, files, copies=1)
    dbapi.image_pending_delete(alice, image["id"])
    files.fail = True
    counts = Scrubber(dbapi, files).run_once()
    assert counts["failed"] == 1 and counts["images"] == 0
    assert _exists(urls[0]) and _row(dbapi, image["id"])[1] == ["pending_delete"]
    # not marked deleted: the image went back to pending_delete
    assert _row(dbapi, image["id"])[0].status == "pending_delete"
    files.fail = False
    assert Scrubber(dbapi, files).run_once()["locations"] == 1
    assert not _exists(urls[0])
    assert _row(dbapi, image["id"])[0].status == "deleted"


def test_store_refusal_keeps_image_pending_delete_and_restorable(dbapi, alice, admin, files, caplog):
    """RBD with clones: the scrubber marks nothing deleted, logs, and retries at every run; the
    operator can still restore the image, properties and all."""
    image, urls = _image_with_data(dbapi, alice, files, copies=1)
    dbapi.image_pending_delete(alice, image["id"])
    files.refuse.add(urls[0])
    for _ in range(2):
        counts = Scrubber(dbapi, files).run_once()
        assert counts == {"images": 0, "locations": 0, "failed": 1, "skipped": 0}
        row, locs, props = _row(dbapi, image["id"])
        assert (row.status, locs, props) == ("pending_delete", ["pending_delete"], [False])
        assert _exists(urls[0])
    assert "in use" in caplog.text or "clones" in caplog.text
    restored = Scrubber(dbapi, files).restore(image["id"])
    assert restored["status"] == "active" and restored["properties"] == {"k": "v"}
    assert [loc["url"] for loc in restored["locations"]] == urls


def test_store_refusal_of_one_copy_keeps_only_that_one(dbapi, alice, files):
    image, (first, second) = _image_with_data(dbapi, alice, files, copies=2)
    dbapi.image_pending_delete(alice, image["id"])
    files.refuse.add(second)
    counts = Scrubber(dbapi, files).run_once()
    assert (counts["locations"], counts["failed"], counts["images"]) == (1, 1, 0)
    row, locs, props = _row(dbapi, image["id"])
    assert (row.status, locs, props) == ("pending_delete", ["deleted", "pending_delete"], [False])
    assert not _exists(first) and _exists(second)
    # the clones are gone: the next run finishes the image
    files.refuse.clear()
    counts = Scrubber(dbapi, files).run_once()
    assert (counts["locations"], counts["failed"], counts["images"]) == (1, 0, 1)
    row, locs, props = _row(dbapi, image["id"])
    assert (row.status, locs, props) == ("deleted", ["deleted", "deleted"], [True])
    assert not _exists(second)


def test_scrubber_deletes_from_the_locations_store(dbapi, alice, files):
    image, _ = _image_with_data(dbapi, alice, files, copies=2, stores=["fast", "cheap"])
    dbapi.image_pending_delete(alice, image["id"])
    Scrubber(dbapi, files).run_once()
    assert files.backends == ["fast", "cheap"]


def test_release_needs_a_claimed_image_with_data_left(dbapi, alice, admin, files):
    image, _ = _image_with_data(dbapi, alice, files, copies=1)
    assert dbapi.image_scrub_release(admin, image["id"]) is False  # active
    dbapi.image_pending_delete(alice, image["id"])
    assert dbapi.image_scrub_release(admin, image["id"]) is False  # not claimed
    assert dbapi.image_scrub_claim(admin, image["id"]) is True
    with pytest.raises(exceptions.Forbidden):
        dbapi.image_scrub_release(alice, image["id"])
    assert dbapi.image_scrub_release(admin, image["id"]) is True
    assert _row(dbapi, image["id"])[0].status == "pending_delete"
    # an image deleted at once (no pending data) is never brought back this way
    other = dbapi.image_create(alice, {"status": "active"})
    dbapi.image_destroy(alice, other["id"])
    assert dbapi.image_scrub_release(admin, other["id"]) is False
