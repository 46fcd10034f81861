"""The import plugins' own logic (images/import_plugins/): the order and names of
[image_import_opts] image_import_plugins, decompression, metadata injection, and the checks
and conversion of image_conversion with the host's qemu-img (Debian's qemu-utils)."""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import os
import shutil
import subprocess
import types
import zipfile

import pytest
from oslo_config import cfg

from glance_service.images import import_plugins
from glance_service.images.import_plugins import Job, PluginError, conversion, decompression, inject

needs_qemu = pytest.mark.skipif(
    shutil.which("qemu-img") is None, reason="qemu-img (qemu-utils) not installed"
)
MiB = 1024 * 1024


def _conf(output_format="raw", cap=1 << 40, inject_props=None, ignore=("admin",)):
    return types.SimpleNamespace(
        image_conversion=types.SimpleNamespace(output_format=output_format),
        image_format=types.SimpleNamespace(vmdk_allowed_types=["streamOptimized", "monolithicSparse"]),
        inject_metadata_properties=types.SimpleNamespace(
            ignore_user_roles=list(ignore), inject=inject_props or {}
        ),
        image_size_cap=cap,
    )


def _job(path, conf, disk_format="raw", container_format="bare", roles=("member",)):
    image = {"id": "11111111-2222-3333-4444-555555555555", "disk_format": disk_format}
    image["container_format"] = container_format
    return Job(conf, image, str(path), list(roles))


def _leftovers(path) -> list[str]:
    return sorted(n for n in os.listdir(os.path.dirname(path)) if n != os.path.basename(path))


def _payload(size=3 * MiB) -> bytes:
    # Not all zeros (compressible, but a real comparison) and no disk-format magic.
    return (b"glance-plugins " * (size // 15 + 1))[:size]


# -- [image_import_opts] --------------------------------------------------------------------------
def test_plugins_run_in_the_configured_order_and_unknown_names_are_skipped(monkeypatch):
    conf = cfg.ConfigOpts()
    import_plugins.register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override(
        "image_import_plugins",
        ["inject_image_metadata", "nope", "no_op", "image_conversion"],
        "image_import_opts",
    )
    assert [name for name, _ in import_plugins.configured(conf)] == [
        "inject_image_metadata",
        "no_op",
        "image_conversion",
    ]
    ran = []
    monkeypatch.setitem(import_plugins.PLUGINS, "no_op", lambda job: ran.append("no_op"))
    monkeypatch.setitem(import_plugins.PLUGINS, "inject_image_metadata", lambda job: ran.append("inject"))
    monkeypatch.setitem(import_plugins.PLUGINS, "image_conversion", lambda job: ran.append("convert"))
    import_plugins.run(Job(conf, {"id": "x"}, "/nonexistent", []))
    assert ran == ["inject", "no_op", "convert"]


def test_upstream_defaults():
    conf = cfg.ConfigOpts()
    import_plugins.register_opts(conf)
    conf([], default_config_files=[])
    assert conf.image_import_opts.image_import_plugins == []
    assert conf.image_conversion.output_format == "raw"
    assert conf.inject_metadata_properties.ignore_user_roles == ["admin"]
    assert conf.inject_metadata_properties.inject == {}


# -- inject_image_metadata -------------------------------------------------------------------------
def test_injection_for_users_without_the_ignored_roles_only():
    props = {"cloud": "east", "os_glance_x": "dropped"}
    assert inject.properties_for(["reader", "member"], ["admin"], props) == {"cloud": "east"}
    assert inject.properties_for(["member", "admin"], ["admin"], props) == {}
    assert inject.properties_for(["member"], ["admin", "member"], props) == {}


def test_inject_plugin_records_properties(tmp_path):
    job = _job(tmp_path / "x", _conf(inject_props={"a": "1"}))
    inject.run(job)
    assert job.properties == {"a": "1"} and not job.data_changed
    admin = _job(tmp_path / "x", _conf(inject_props={"a": "1"}), roles=["admin"])
    inject.run(admin)
    assert admin.properties == {}


# -- image_decompression ---------------------------------------------------------------------------
def _compress(kind: str, data: bytes, path):
    if kind == "gzip":
        path.write_bytes(gzip.compress(data))
    elif kind == "xz":
        path.write_bytes(lzma.compress(data))
    elif kind == "lzma":
        path.write_bytes(lzma.compress(data, format=lzma.FORMAT_ALONE))
    else:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("disk.img", data)


@pytest.mark.parametrize("kind", ["gzip", "zip", "xz", "lzma"])
def test_decompression_replaces_the_staged_data(tmp_path, kind):
    data = _payload()
    staged = tmp_path / "11111111-2222-3333-4444-555555555555"
    _compress(kind, data, staged)
    assert decompression.detect(staged.read_bytes()[:16]) == kind
    job = _job(staged, _conf())
    decompression.run(job)
    assert staged.read_bytes() == data
    assert job.data_changed
    assert _leftovers(staged) == []


def test_other_content_and_compressed_containers_are_left_alone(tmp_path):
    staged = tmp_path / "img"
    staged.write_bytes(_payload(MiB))
    job = _job(staged, _conf())
    decompression.run(job)
    assert not job.data_changed and staged.read_bytes() == _payload(MiB)
    staged.write_bytes(gzip.compress(b"x" * 1000))
    before = staged.read_bytes()
    job = _job(staged, _conf(), container_format="compressed")
    decompression.run(job)
    assert not job.data_changed and staged.read_bytes() == before


def test_zip_of_two_files_is_refused_and_nothing_changes(tmp_path):
    staged = tmp_path / "img"
    with zipfile.ZipFile(staged, "w") as zf:
        zf.writestr("a", b"a")
        zf.writestr("b", b"b")
    before = staged.read_bytes()
    with pytest.raises(PluginError, match="more than one file"):
        decompression.run(_job(staged, _conf()))
    assert staged.read_bytes() == before and _leftovers(staged) == []


def test_decompression_stops_at_image_size_cap(tmp_path):
    staged = tmp_path / "img"
    staged.write_bytes(gzip.compress(bytes(8 * MiB)))
    before = staged.read_bytes()
    with pytest.raises(PluginError, match="image_size_cap"):
        decompression.run(_job(staged, _conf(cap=4 * MiB)))
    assert staged.read_bytes() == before and _leftovers(staged) == []


def test_corrupt_gzip_fails_cleanly(tmp_path):
    staged = tmp_path / "img"
    packed = gzip.compress(os.urandom(MiB))
    staged.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(PluginError, match="could not be decompressed"):
        decompression.run(_job(staged, _conf()))
    assert _leftovers(staged) == []


# -- image_conversion: qemu-img info checks (upstream's) --------------------------------------------
@pytest.mark.parametrize(
    ("info", "message"),
    [
        ({"format": "raw"}, "disagrees about format"),
        ({"format": "qcow2", "backing-filename": "/etc/passwd"}, "backing files are not allowed"),
        ({"format": "qcow2", "format-specific": {"data": {"data-file": "/dev/sda"}}}, "data-file set"),
        ({"format": "vmdk", "format-specific": {"data": {}}}, "create-type"),
        ({"format": "vmdk", "format-specific": {"data": {"create-type": "monolithicFlat"}}}, "Invalid VMDK"),
    ],
)
def test_qemu_img_info_checks(info, message):
    fmt = "vmdk" if "vmdk" in json.dumps(info) else "qcow2"
    with pytest.raises(PluginError, match=message):
        conversion.check_info(info, fmt, ["streamOptimized", "monolithicSparse"])


def test_qemu_img_info_accepts_a_plain_qcow2():
    conversion.check_info({"format": "qcow2", "format-specific": {"data": {"compat": "1.1"}}}, "qcow2", [])


# -- image_conversion with qemu-img -----------------------------------------------------------------
def _qemu(*args):
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def _qcow2_with_data(tmp_path, name="11111111-2222-3333-4444-555555555555") -> tuple:
    raw = tmp_path / "src.raw"
    raw.write_bytes(_payload(4 * MiB))
    staged = tmp_path / "stage" / name
    staged.parent.mkdir()
    _qemu("convert", "-f", "raw", "-O", "qcow2", str(raw), str(staged))
    expected = tmp_path / "expected.raw"
    _qemu("convert", "-f", "qcow2", "-O", "raw", str(staged), str(expected))
    return staged, hashlib.sha512(expected.read_bytes()).hexdigest()


@needs_qemu
def test_qcow2_is_converted_to_raw_as_qemu_img_converts_it(tmp_path):
    staged, expected = _qcow2_with_data(tmp_path)
    job = _job(staged, _conf(), disk_format="qcow2")
    conversion.run(job)
    assert hashlib.sha512(staged.read_bytes()).hexdigest() == expected
    assert job.values == {"virtual_size": 4 * MiB, "disk_format": "raw", "container_format": "bare"}
    assert job.data_changed and _leftovers(staged) == []


@needs_qemu
@pytest.mark.parametrize(("fmt", "qemu_fmt"), [("vmdk", "vmdk"), ("vhd", "vpc")])
def test_vmdk_and_vhd_are_converted(tmp_path, fmt, qemu_fmt):
    raw = tmp_path / "src.raw"
    raw.write_bytes(_payload(2 * MiB))
    staged = tmp_path / "stage" / "img"
    staged.parent.mkdir()
    _qemu("convert", "-f", "raw", "-O", qemu_fmt, str(raw), str(staged))
    job = _job(staged, _conf(), disk_format=fmt)
    conversion.run(job)
    assert job.values["disk_format"] == "raw"
    assert staged.read_bytes()[: 2 * MiB] == raw.read_bytes()


@needs_qemu
def test_conversion_to_the_configured_format(tmp_path):
    raw = tmp_path / "stage" / "img"
    raw.parent.mkdir()
    raw.write_bytes(_payload(2 * MiB))
    job = _job(raw, _conf(output_format="qcow2"), disk_format="raw")
    conversion.run(job)
    assert raw.read_bytes()[:4] == b"QFI\xfb" and job.values["disk_format"] == "qcow2"


@needs_qemu
def test_data_already_in_the_output_format_is_not_converted(tmp_path):
    raw = tmp_path / "img"
    raw.write_bytes(_payload(2 * MiB))
    job = _job(raw, _conf(), disk_format="raw")
    conversion.run(job)
    assert not job.data_changed and job.values == {"virtual_size": 2 * MiB}
    assert raw.read_bytes() == _payload(2 * MiB)


@needs_qemu
def test_qcow2_with_a_backing_file_is_refused_before_qemu_img_runs(tmp_path):
    base = tmp_path / "base.qcow2"
    _qemu("create", "-f", "qcow2", str(base), "8M")
    staged = tmp_path / "stage" / "img"
    staged.parent.mkdir()
    _qemu("create", "-f", "qcow2", "-F", "qcow2", "-b", str(base), str(staged))
    before = staged.read_bytes()
    with pytest.raises(PluginError, match="backing file"):
        conversion.run(_job(staged, _conf(), disk_format="qcow2"))
    assert staged.read_bytes() == before and _leftovers(staged) == []


@needs_qemu
def test_qcow2_with_a_data_file_is_refused(tmp_path):
    staged = tmp_path / "stage" / "img"
    staged.parent.mkdir()
    _qemu("create", "-f", "qcow2", "-o", f"data_file={tmp_path / 'ext.raw'}", str(staged), "8M")
    with pytest.raises(PluginError, match="external data file"):
        conversion.run(_job(staged, _conf(), disk_format="qcow2"))
    assert _leftovers(staged) == []


@needs_qemu
def test_declared_format_must_match_the_data(tmp_path):
    staged, _ = _qcow2_with_data(tmp_path)
    with pytest.raises(PluginError, match="disallowed configuration|mismatch"):
        conversion.run(_job(staged, _conf(), disk_format="vmdk"))


@needs_qemu
def test_a_failed_conversion_leaves_nothing(tmp_path, monkeypatch):
    staged, _ = _qcow2_with_data(tmp_path)
    before = staged.read_bytes()

    def broken(src, fmt, dest, target, beat):
        with open(dest, "wb") as f:
            f.write(b"partial")
        raise PluginError("Image conversion failed: disk full")

    monkeypatch.setattr(conversion, "qemu_img_convert", broken)
    with pytest.raises(PluginError, match="disk full"):
        conversion.run(_job(staged, _conf(), disk_format="qcow2"))
    assert staged.read_bytes() == before and _leftovers(staged) == []


def test_qemu_img_info_runs_under_upstreams_limits():
    assert conversion.QEMU_IMG_PROC_LIMITS.cpu_time == 2
    assert conversion.QEMU_IMG_PROC_LIMITS.address_space == 1024**3


# -- the worker's hook ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("task_type", "method", "runs"),
    [
        ("api_image_import", "glance-direct", True),
        ("api_image_import", "web-download", True),
        ("api_image_import", "copy-image", False),  # upstream: "Skipping plugins on 'copy-image' job."
        ("import", None, False),  # the legacy tasks API import has no plugins upstream
    ],
)
def test_the_worker_runs_plugins_for_api_imports_except_copy_image(monkeypatch, task_type, method, runs):
    from glance_service.context import RequestContext
    from glance_service.images import import_workers

    conf = cfg.ConfigOpts()
    import_plugins.register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override("image_import_plugins", ["no_op"], "image_import_opts")
    seen = []
    monkeypatch.setattr(import_plugins, "run", lambda job: seen.append(job) or job)
    svc = types.SimpleNamespace(
        conf=conf, stores=types.SimpleNamespace(staged_url=lambda i: f"file:///stage/{i}")
    )
    req = {"method": {"name": method}} if method else {}
    task = {"id": "t", "type": task_type, "image_id": "i", "input": {"import_req": req}}
    worker = import_workers._Import(svc, RequestContext.admin(), task, roles=["member"])
    worker._run_plugins({"id": "i", "disk_format": "qcow2"})
    assert bool(seen) is runs
    if runs:
        assert seen[0].path == "/stage/i" and seen[0].roles == ["member"]


# -- start-up check ---------------------------------------------------------------------------------
def _loaded(tmp_path, line: str) -> cfg.ConfigOpts:
    path = tmp_path / "glance-api.conf"
    path.write_text(f"[image_import_opts]\n{line}\n")
    conf = cfg.ConfigOpts()
    conf(["--config-file", str(path)], default_config_files=[])
    return conf


def test_a_list_without_brackets_stops_the_service_with_the_fix(tmp_path):
    from glance_service.images import import_options

    with pytest.raises(import_options.ImportOptionsError, match=r"in brackets.*\[image_conversion\]"):
        import_options.check_options(_loaded(tmp_path, "image_import_plugins = image_conversion"))
    conf = _loaded(tmp_path, "image_import_plugins = [image_decompression, image_conversion]")
    import_options.check_options(conf)
    assert conf.image_import_opts.image_import_plugins == ["image_decompression", "image_conversion"]


@needs_qemu
def test_a_raw_result_over_image_size_cap_is_refused_before_conversion(tmp_path):
    staged = tmp_path / "stage" / "img"
    staged.parent.mkdir()
    _qemu("create", "-f", "qcow2", str(staged), "64M")  # tiny file, 64 MiB of raw output
    with pytest.raises(PluginError, match="image_size_cap"):
        conversion.run(_job(staged, _conf(cap=32 * MiB), disk_format="qcow2"))
    assert staged.read_bytes()[:4] == b"QFI\xfb" and _leftovers(staged) == []
