"""glance-manage adopt / handback at the database level (issue 19, docs/ADOPTION.md).

An upstream schema made by upstream's own migrations (Glance 33's venv, at its head and at
the 2023.1 head), filled with every kind of record, converted into ours and back into a fresh
upstream schema: every row must come back equal; a second run writes nothing; a run killed
halfway resumes; what cannot be converted is refused before anything is written.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa

from glance_service.db import adopt, migrate
from tests.fixtures.upstream_adopt import make_schema

HEADS = ["2024_1_contract01", "2023_1_contract01"]
T0 = datetime.datetime(2025, 3, 4, 5, 6, 7, 123456)
P1, P2, P3 = "project-one", "project-two", "project-three"


def _ts(n: int) -> datetime.datetime:
    return T0 + datetime.timedelta(minutes=n)


def populate(url: str) -> dict[str, str]:
    """Every visibility, status, member status; properties, tags, locations with metadata,
    a deleted and a pending_delete image, a task, a metadef namespace with items."""
    eng = sa.create_engine(url)
    ids = {}
    rows = [
        ("pub", "public", "active", P1, False),
        ("priv", "private", "active", P1, True),
        ("shared", "shared", "active", P1, False),
        ("comm", "community", "active", P2, False),
        ("deact", "public", "deactivated", P2, False),
        ("queued", "private", "queued", P3, False),
        ("pend", "private", "pending_delete", P3, False),
        ("gone", "private", "deleted", P3, False),
        ("cinder", "private", "active", P3, False),
    ]
    with eng.begin() as c:
        for n, (name, vis, status, owner, protected) in enumerate(rows):
            image_id = str(uuid.UUID(int=n + 1))
            ids[name] = image_id
            deleted = status in ("deleted", "pending_delete")
            c.execute(
                sa.text(
                    "INSERT INTO images (id, name, size, virtual_size, status, visibility, protected, "
                    "os_hidden, checksum, os_hash_algo, os_hash_value, owner, disk_format, "
                    "container_format, min_disk, min_ram, created_at, updated_at, deleted_at, deleted) "
                    "VALUES (:id, :name, :size, :vsize, :status, :vis, :prot, :hidden, :ck, 'sha512', "
                    ":hv, :owner, 'qcow2', 'bare', :md, :mr, :c, :u, :d, :deleted)"
                ),
                dict(
                    id=image_id, name=name, size=None if status == "queued" else 1000 + n,
                    vsize=None if status == "queued" else 5000 + n, status=status, vis=vis,
                    prot=protected, hidden=n == 2, ck=None if status == "queued" else f"{n:032x}",
                    hv=None if status == "queued" else f"{n:0128x}", owner=owner, md=n, mr=n * 64,
                    c=_ts(n), u=_ts(n + 100), d=_ts(200) if deleted else None, deleted=deleted,
                ),
            )  # fmt: skip
            for k, v in (("os_distro", "debian"), ("custom_" + name, "ü-" + name), ("hw_disk_bus", "scsi")):
                c.execute(
                    sa.text(
                        "INSERT INTO image_properties (image_id, name, value, created_at, deleted) "
                        "VALUES (:i, :k, :v, :c, :d)"
                    ),
                    dict(i=image_id, k=k, v=v, c=_ts(n), d=False),
                )
            for tag in ("zeta", "alpha", name):
                c.execute(
                    sa.text(
                        "INSERT INTO image_tags (image_id, value, created_at, deleted) "
                        "VALUES (:i, :v, :c, :d)"
                    ),
                    dict(i=image_id, v=tag, c=_ts(n), d=False),
                )
            if status not in ("queued",):
                scheme = (
                    "cinder://volume-1" if name == "cinder" else f"file:///var/lib/glance/images/{image_id}"
                )
                locs = [(scheme, {"store": "fast"})]
                if name == "pub":
                    locs.append(("rbd://fsid/images/x/snap", {"store": "ceph", "note": "second"}))
                for value, meta in locs:
                    c.execute(
                        sa.text(
                            "INSERT INTO image_locations (image_id, value, meta_data, status, created_at, "
                            "deleted) VALUES (:i, :v, :m, :s, :c, :d)"
                        ),
                        dict(
                            i=image_id, v=value, m=json.dumps(meta),
                            s="pending_delete" if status == "pending_delete" else "active", c=_ts(n), d=False,
                        ),
                    )  # fmt: skip
        for member, status in ((P2, "accepted"), (P3, "pending"), ("project-four", "rejected")):
            c.execute(
                sa.text(
                    "INSERT INTO image_members (image_id, member, can_share, status, created_at, updated_at, "
                    "deleted) VALUES (:i, :m, :cs, :s, :c, :u, :d)"
                ),
                dict(i=ids["shared"], m=member, cs=False, s=status, c=_ts(1), u=_ts(2), d=False),
            )
        c.execute(
            sa.text(
                "INSERT INTO image_members (image_id, member, can_share, status, created_at, "
                "deleted_at, deleted) "
                "VALUES (:i, 'project-five', :cs, 'accepted', :c, :c, :d)"
            ),
            dict(i=ids["shared"], cs=False, c=_ts(3), d=True),
        )
        c.execute(
            sa.text(
                "INSERT INTO tasks (id, type, status, owner, expires_at, image_id, request_id, user_id, "
                "created_at, updated_at, deleted) VALUES ('t-1', 'api_image_import', 'success', :o, :e, :i, "
                "'req-1', 'user-1', :c, :c, :d)"
            ),
            dict(o=P1, e=_ts(500), i=ids["pub"], c=_ts(1), d=False),
        )
        c.execute(
            sa.text("INSERT INTO task_info (task_id, input, result, message) VALUES ('t-1', :i, :r, 'done')"),
            dict(i=json.dumps({"image_id": ids["pub"]}), r=json.dumps({"image_id": ids["pub"]})),
        )
        ns = c.execute(
            sa.text(
                "INSERT INTO metadef_namespaces (namespace, display_name, description, visibility, "
                "protected, "
                "owner, created_at) VALUES ('OS::Adopt::Test', 'Adopt', 'd', NULL, NULL, :o, :c)"
            ),
            dict(o=P1, c=_ts(1)),
        ).lastrowid
        rt = c.execute(
            sa.text(
                "INSERT INTO metadef_resource_types (name, protected, created_at) "
                "VALUES ('OS::Glance::Image', :p, :c)"
            ),
            dict(p=True, c=_ts(1)),
        ).lastrowid
        c.execute(
            sa.text(
                "INSERT INTO metadef_namespace_resource_types (resource_type_id, namespace_id, prefix, "
                "created_at) "
                "VALUES (:rt, :ns, 'adopt_', :c)"
            ),
            dict(rt=rt, ns=ns, c=_ts(1)),
        )
        c.execute(
            sa.text(
                "INSERT INTO metadef_properties (namespace_id, name, json_schema, created_at) "
                "VALUES (:ns, 'speed', :j, :c)"
            ),
            dict(ns=ns, j=json.dumps({"type": "integer", "title": "Speed"}), c=_ts(1)),
        )
        c.execute(
            sa.text(
                "INSERT INTO metadef_objects (namespace_id, name, description, required, json_schema, "
                "created_at) "
                "VALUES (:ns, 'obj', 'o', :r, :j, :c)"
            ),
            dict(ns=ns, r="a,b", j=json.dumps({"a": {"type": "string"}, "b": {"type": "string"}}), c=_ts(1)),
        )
        c.execute(
            sa.text("INSERT INTO metadef_tags (namespace_id, name, created_at) VALUES (:ns, 'fast', :c)"),
            dict(ns=ns, c=_ts(1)),
        )
    eng.dispose()
    return ids


def _sorted(rows) -> list:
    return sorted(rows, key=repr)


def dump(url: str) -> dict:
    """Every record a conversion carries, without row ids, comparable across the schemas."""
    eng = sa.create_engine(url)
    meta = sa.MetaData()
    meta.reflect(eng, only=adopt.TABLES)
    out = {}

    def value(k, v):
        if k == "required":  # upstream: "a,b"; ours: a JSON list
            return json.loads(v) if v and v.startswith("[") else (v.split(",") if v else [])
        return int(v) if isinstance(v, bool) else v

    def norm(row, drop=("id",)):
        return tuple((k, value(k, v)) for k, v in sorted(row._mapping.items()) if k not in drop)

    with eng.connect() as c:
        for name in ("images", "tasks", "task_info"):
            out[name] = _sorted(norm(r, drop=()) for r in c.execute(sa.select(meta.tables[name])))
        for name in adopt.IMAGE_CHILDREN:
            t = meta.tables[name]
            out[name] = [norm(r) for r in c.execute(sa.select(t).order_by(t.c.image_id, t.c.id))]
        ns = {r.id: r.namespace for r in c.execute(sa.select(meta.tables["metadef_namespaces"]))}
        rts = {r.id: r.name for r in c.execute(sa.select(meta.tables["metadef_resource_types"]))}
        out["metadef_namespaces"] = _sorted(
            norm(r) for r in c.execute(sa.select(meta.tables["metadef_namespaces"]))
        )
        out["metadef_resource_types"] = _sorted(
            norm(r) for r in c.execute(sa.select(meta.tables["metadef_resource_types"]))
        )
        out["metadef_namespace_resource_types"] = _sorted(
            (ns[r.namespace_id], rts[r.resource_type_id], norm(r, ("namespace_id", "resource_type_id")))
            for r in c.execute(sa.select(meta.tables["metadef_namespace_resource_types"]))
        )
        for name in adopt.NS_ITEMS:
            out[name] = _sorted(
                (ns[r.namespace_id], norm(r, ("id", "namespace_id")))
                for r in c.execute(sa.select(meta.tables[name]))
            )
    eng.dispose()
    return out


def _upstream_norm(d: dict) -> dict:
    """Upstream's NULL namespace visibility/protected as their effective values."""
    fixed = []
    for row in d["metadef_namespaces"]:
        r = dict(row)
        r["visibility"] = r["visibility"] or "private"
        r["protected"] = int(bool(r["protected"]))
        fixed.append(tuple(sorted(r.items())))
    return dict(d, metadef_namespaces=_sorted(fixed))


@pytest.fixture(params=HEADS)
def upstream(request, tmp_path):
    url = f"sqlite:///{tmp_path}/upstream.sqlite"
    assert make_schema(url, tmp_path / "up", request.param) == request.param
    ids = populate(url)
    return url, ids, request.param


def test_adopt_then_handback_carries_every_record(upstream, tmp_path):
    src, ids, head = upstream
    ours = f"sqlite:///{tmp_path}/ours.sqlite"
    before = dump(src)

    checked = adopt.adopt(src, ours, check=True, allow_unservable=True)
    assert checked.survey.schema.revision == head
    assert checked.survey.images_by_status == {
        "active": 5, "deactivated": 1, "queued": 1
    }  # fmt: skip
    assert checked.survey.images_by_visibility["community"] == 1
    assert checked.survey.members_by_status == {"accepted": 1, "pending": 1, "rejected": 1}
    assert set(checked.survey.unservable) == {ids["cinder"]}
    assert migrate.current(ours) is None  # --check created nothing

    result = adopt.adopt(src, ours, allow_unservable=True)
    assert result.counts.written == {"images": 9, "tasks": 1, "metadef_namespaces": 1}
    assert migrate.current(ours) == migrate.head()
    assert _upstream_norm(dump(ours)) == _upstream_norm(before)
    assert dump(src) == before  # the source is only read
    eng = sa.create_engine(ours)
    with eng.connect() as c:  # our encoding of an object's required names
        assert c.execute(sa.text("SELECT required FROM metadef_objects")).scalar() == '["a", "b"]'
    eng.dispose()

    again = adopt.adopt(src, ours, allow_unservable=True)
    assert again.counts.changed == 0

    back = f"sqlite:///{tmp_path}/back.sqlite"
    make_schema(back, tmp_path / "back", head)
    assert adopt.handback(ours, back, check=True).counts.written["images"] == 9
    assert adopt.handback(ours, back).counts.changed == 11
    assert adopt.handback(ours, back).counts.changed == 0
    assert _upstream_norm(dump(back)) == _upstream_norm(before)
    eng = sa.create_engine(back)
    with eng.connect() as c:  # upstream's encoding again
        assert c.execute(sa.text("SELECT required FROM metadef_objects")).scalar() == "a,b"
    eng.dispose()


def test_adopt_and_handback_on_mariadb(mariadb, tmp_path):
    """Upstream's DATETIME keeps no fraction on MariaDB, ours keeps microseconds: a second
    run must still find nothing to write, both ways."""
    name = uuid.uuid4().hex[:8]
    # upstream's databases as its glance-api.conf names them (PyMySQL: its venv has no mysqlclient)
    src = mariadb.create_database(f"up_{name}", "glance", "glance-pw", driver="pymysql")
    make_schema(src, tmp_path / "up")
    populate(src)
    before = dump(src)
    ours = mariadb.create_database(f"ours_{name}", "glance", "glance-pw")
    assert adopt.adopt(src, ours, allow_unservable=True).counts.changed == 11
    assert adopt.adopt(src, ours, allow_unservable=True).counts.changed == 0
    assert _upstream_norm(dump(ours)) == _upstream_norm(before)
    back = mariadb.create_database(f"back_{name}", "glance", "glance-pw", driver="pymysql")
    make_schema(back, tmp_path / "back")
    eng = sa.create_engine(ours)
    with eng.begin() as c:  # a fraction that MySQL would round up and MariaDB truncates
        c.execute(sa.text("UPDATE images SET updated_at = :t"), {"t": T0.replace(microsecond=999999)})
    eng.dispose()
    assert adopt.handback(ours, back).counts.changed == 11
    assert adopt.handback(ours, back).counts.changed == 0


def test_killed_run_resumes(upstream, tmp_path, monkeypatch):
    src, _, _ = upstream
    ours = f"sqlite:///{tmp_path}/ours.sqlite"
    real = adopt.Converter._write_image
    calls = []

    def dies_on_the_fourth(self, *args):
        calls.append(args[0])
        if len(calls) == 4:
            raise KeyboardInterrupt("killed")
        return real(self, *args)

    monkeypatch.setattr(adopt.Converter, "_write_image", dies_on_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        adopt.adopt(src, ours, allow_unservable=True)
    monkeypatch.setattr(adopt.Converter, "_write_image", real)
    resumed = adopt.adopt(src, ours, allow_unservable=True)
    assert resumed.counts.written["images"] == 6  # the three before the kill are not written again
    assert _upstream_norm(dump(ours)) == _upstream_norm(dump(src))


def test_source_changes_are_caught_up(upstream, tmp_path):
    src, ids, _ = upstream
    ours = f"sqlite:///{tmp_path}/ours.sqlite"
    adopt.adopt(src, ours, allow_unservable=True)
    eng = sa.create_engine(src)
    with eng.begin() as c:  # the old API still serves until the switch
        c.execute(sa.text("UPDATE images SET name = 'renamed' WHERE id = :i"), {"i": ids["pub"]})
        c.execute(sa.text("DELETE FROM image_tags WHERE image_id = :i AND value = 'zeta'"), {"i": ids["pub"]})
    eng.dispose()
    assert adopt.adopt(src, ours, allow_unservable=True).counts.written["images"] == 1
    assert _upstream_norm(dump(ours)) == _upstream_norm(dump(src))


def test_refusals_write_nothing(upstream, tmp_path):
    src, ids, _ = upstream
    ours = f"sqlite:///{tmp_path}/ours.sqlite"
    with pytest.raises(adopt.Refused, match="1 image.s. have locations no store here serves"):
        adopt.adopt(src, ours)
    assert migrate.current(ours) is None

    adopt.adopt(src, ours, allow_unservable=True)
    eng = sa.create_engine(ours)
    with eng.begin() as c:  # a deleted image of ours only (the smoke check's): no one's data
        c.execute(sa.text("UPDATE images SET id = 'deleted-here' WHERE id = :i"), {"i": ids["gone"]})
    assert adopt.adopt(src, ours, allow_unservable=True).counts.written["images"] == 1
    with eng.begin() as c:
        c.execute(sa.text("UPDATE images SET id = 'not-in-the-source' WHERE id = :i"), {"i": ids["pub"]})
    with pytest.raises(adopt.Refused, match="holds 1 image.s. the source does not have"):
        adopt.adopt(src, ours, allow_unservable=True)

    eng = sa.create_engine(src)
    with eng.begin() as c:
        c.execute(sa.text("UPDATE alembic_version SET version_num = 'zed_contract01'"))
    eng.dispose()
    with pytest.raises(adopt.Refused, match="'zed_contract01' is not a supported upstream Glance release"):
        adopt.adopt(src, f"sqlite:///{tmp_path}/other.sqlite")


def test_glance_manage_adopt_check_and_exit_codes(upstream, tmp_path):
    src, _, head = upstream
    conf = tmp_path / "glance-manage.conf"
    ours = tmp_path / "ours.sqlite"
    conf.write_text(f"[database]\nconnection = sqlite:///{ours}\n")
    manage = [sys.executable, "-m", "glance_service.cmd.manage", "--config-file", str(conf)]

    def run(*args):
        return subprocess.run([*manage, *args], capture_output=True, text=True, timeout=120, check=False)

    refused = run("adopt", "--from-connection", src, "--check")
    assert refused.returncode == 2, refused.stderr
    assert f"revision {head}" in refused.stdout
    assert "REFUSED: 1 image(s) have locations" in refused.stdout
    assert not ours.exists() or migrate.current(f"sqlite:///{ours}") is None

    done = run("adopt", "--from-connection", src, "--allow-unservable", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["changed"] == 11
    again = run("adopt", "--from-connection", src, "--allow-unservable")
    assert again.returncode == 0 and "changed: 0" in again.stdout


def test_locations_without_a_store_id_get_ours(upstream, tmp_path):
    """A single-store upstream records no store id; our service is multi-store (always, in the
    toolkit): such a location gets the id of our one store of its kind."""
    src, ids, _ = upstream
    eng = sa.create_engine(src)
    with eng.begin() as c:
        c.execute(sa.text("UPDATE image_locations SET meta_data = '{}' WHERE value LIKE 'file:%'"))
    eng.dispose()
    ours = f"sqlite:///{tmp_path}/ours.sqlite"
    legacy = {"file": "local", "rbd": "not-used"}
    adopt.adopt(src, ours, allow_unservable=True, legacy_stores=legacy)
    eng = sa.create_engine(ours)
    with eng.connect() as c:
        rows = c.execute(sa.text("SELECT value, meta_data FROM image_locations")).all()
    eng.dispose()
    stores = {json.loads(meta).get("store") for value, meta in rows if value.startswith("file:")}
    assert stores == {"local"}
    # a location that names its store keeps it; one of a kind not in the map keeps none
    assert {json.loads(meta)["store"] for value, meta in rows if value.startswith("rbd:")} == {"ceph"}
    assert {json.loads(meta)["store"] for value, meta in rows if value.startswith("cinder:")} == {"fast"}
    again = adopt.adopt(src, ours, allow_unservable=True, legacy_stores=legacy)
    assert again.counts.changed == 0
