"""GET /v2/images: filters with operators, sorting, pagination links, 400s."""

import time
import urllib.parse
import uuid

import pytest


@pytest.fixture(scope="module")
def lister(glance):
    """A project with five images of known attributes."""
    from tests.functional.conftest import Http

    h = Http(glance.api_url)
    imgs = []
    for i, (fmt, size_tag) in enumerate(
        [("raw", "s"), ("qcow2", "m"), ("raw", "l"), ("iso", "s"), ("qcow2", "xl")]
    ):
        imgs.append(
            h.create_image(
                name=f"img{i}",
                disk_format=fmt,
                container_format="bare",
                min_ram=i * 100,
                os_distro="ubuntu" if i % 2 else "debian",
                tags=[size_tag, "all"],
            )
        )
        time.sleep(0.01)
    hidden = h.create_image(name="hidden", os_hidden=True)
    return h, imgs, hidden


def own(h, path: str) -> str:
    """Other tests create public images, which every list shows: look at this project's only."""
    return path + ("&" if "?" in path else "?") + f"owner={h.project}"


def names(resp):
    assert resp.status_code == 200, resp.text
    return [i["name"] for i in resp.json()["images"]]


def test_default_sort_is_created_at_desc(lister):
    h, imgs, _ = lister
    assert names(h.get(own(h, "/v2/images"))) == ["img4", "img3", "img2", "img1", "img0"]


def test_body_links(lister):
    h, _, _ = lister
    body = h.get(own(h, "/v2/images")).json()
    assert body["first"] == f"/v2/images?owner={h.project}" and body["schema"] == "/v2/schemas/images"
    assert "next" not in body


def test_pagination_next_links(lister):
    h, imgs, _ = lister
    seen = []
    path = own(h, "/v2/images?limit=2&sort_key=name&sort_dir=asc")
    pages = 0
    while path:
        body = h.get(path).json()
        pages += 1
        seen += [i["name"] for i in body["images"]]
        assert "marker" not in body["first"]
        path = body.get("next")
        if path:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
            assert query["limit"] == ["2"] and query["sort_key"] == ["name"]
    assert seen == ["img0", "img1", "img2", "img3", "img4"]
    assert pages == 3


def test_limit_zero_and_marker(lister):
    h, imgs, _ = lister
    assert names(h.get(own(h, "/v2/images?limit=0"))) == []
    assert names(h.get(own(h, f"/v2/images?sort_key=name&sort_dir=asc&marker={imgs[2]['id']}"))) == [
        "img3",
        "img4",
    ]


def test_bad_marker_is_400(lister):
    h, imgs, _ = lister
    assert h.get(f"/v2/images?marker={uuid.uuid4()}").status_code == 400
    assert h.as_other().get(f"/v2/images?marker={imgs[0]['id']}").status_code == 400


def test_sort_new_syntax(lister):
    h, _, _ = lister
    assert names(h.get(own(h, "/v2/images?sort=disk_format:asc,name:desc"))) == [
        "img3",
        "img4",
        "img1",
        "img2",
        "img0",
    ]


def test_eq_and_in_operators(lister):
    h, _, _ = lister
    assert names(h.get(own(h, "/v2/images?name=img1"))) == ["img1"]
    assert names(h.get(own(h, "/v2/images?name=eq:img1"))) == ["img1"]
    assert sorted(names(h.get(own(h, "/v2/images?name=in:img1,img3")))) == ["img1", "img3"]
    assert sorted(names(h.get(own(h, "/v2/images?disk_format=in:iso,qcow2")))) == ["img1", "img3", "img4"]
    assert sorted(names(h.get('/v2/images?name=in:"img0",img2'))) == ["img0", "img2"]


def test_time_operators(lister):
    h, imgs, _ = lister
    t = imgs[2]["created_at"]
    assert set(names(h.get(own(h, f"/v2/images?created_at=lt:{t}")))) <= {"img0", "img1"}
    assert "img4" in names(h.get(own(h, f"/v2/images?created_at=gte:{t}")))
    assert "img2" in names(h.get(own(h, f"/v2/images?updated_at=gte:{t}")))
    assert names(h.get(own(h, "/v2/images?created_at=gt:2999-01-01T00:00:00Z"))) == []
    assert len(names(h.get(own(h, "/v2/images?created_at=neq:2000-01-01T00:00:00Z")))) == 5


def test_range_and_column_filters(lister):
    h, _, _ = lister
    assert sorted(names(h.get(own(h, "/v2/images?min_ram=200")))) == ["img2"]
    assert names(h.get(own(h, "/v2/images?size_min=1"))) == []
    assert sorted(names(h.get(own(h, f"/v2/images?owner={h.project}&status=queued&limit=100")))) == [
        "img0",
        "img1",
        "img2",
        "img3",
        "img4",
    ]


def test_custom_property_filter(lister):
    h, _, _ = lister
    assert sorted(names(h.get(own(h, "/v2/images?os_distro=ubuntu")))) == ["img1", "img3"]


def test_tags_are_anded(lister):
    h, _, _ = lister
    assert sorted(names(h.get(own(h, "/v2/images?tag=all&tag=s")))) == ["img0", "img3"]
    assert names(h.get(own(h, "/v2/images?tag=s&tag=xl"))) == []


def test_os_hidden(lister):
    h, _, _ = lister
    assert names(h.get(own(h, "/v2/images?os_hidden=true"))) == ["hidden"]
    assert "hidden" not in names(h.get(own(h, "/v2/images?os_hidden=false")))
    assert names(h.get(own(h, "/v2/images?os_hidden=TRUE"))) == ["hidden"]


def test_protected_filter(lister):
    h, _, _ = lister
    assert len(names(h.get(own(h, "/v2/images?protected=false")))) == 5
    assert names(h.get(own(h, "/v2/images?protected=true"))) == []


def test_visibility_and_member_status(lister):
    h, _, _ = lister
    assert len(names(h.get(own(h, "/v2/images?visibility=shared")))) == 5
    assert names(h.get(own(h, "/v2/images?visibility=private"))) == []
    assert len(names(h.get(own(h, "/v2/images?visibility=all")))) == 5
    assert len(names(h.get(own(h, "/v2/images?member_status=all")))) == 5


@pytest.mark.parametrize(
    "query",
    [
        "limit=x",
        "limit=-1",
        "marker=nope",
        "sort_key=owner",
        "sort_dir=sideways",
        "sort=name:up",
        "sort=name&sort_key=name",
        "sort_key=name&sort_key=id&sort_key=size&sort_dir=asc&sort_dir=desc",
        "member_status=x",
        "visibility=x",
        "os_hidden=maybe",
        "protected=False",
        "changes-since=2016-01-01",
        "name=gt:x",
        "created_at=gt:yesterday",
        "created_at=between:2016-01-01T00:00:00Z",
        "size_min=x",
        'name=in:"a',
        "size_max=1.5",
    ],
)
def test_bad_queries_are_400(http, query):
    resp = http.get("/v2/images?" + query)
    assert resp.status_code == 400, resp.text


def test_reader_lists_member_lists_other_project_not_seen(lister):
    h, _, _ = lister
    assert len(names(h.as_other(h.project, roles="reader").get(own(h, "/v2/images")))) == 5
    assert h.as_other(h.project, roles="service").get("/v2/images").status_code == 403
    assert names(h.as_other().get(f"/v2/images?owner={h.project}")) == []


def test_limit_is_capped(http):
    assert http.get("/v2/images?limit=100000").status_code == 200
