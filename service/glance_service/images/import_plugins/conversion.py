"""``image_conversion``: the staged data converted with ``qemu-img`` to ``[image_conversion]
output_format`` (upstream's plugin, with its checks, in its order):

1. the data is inspected (``images/format_inspector.py``: oslo.utils' inspectors and this
   service's stricter checks) and must be the declared ``disk_format`` and safe: a qcow2
   backing file or external data file, a VMDK that is not one file, a differencing image are
   refused before ``qemu-img`` opens anything (CVE-2022-47951, CVE-2024-32498 class); ISO
   content is kept as it is when declared ``iso`` and refused otherwise;
2. ``qemu-img info -f <format> --output=json`` runs under upstream's resource limits (1 GiB of
   address space, 2 s of CPU) and must agree: the same format, no ``backing-filename``, no
   ``data-file``, a VMDK ``create-type`` in ``[image_format] vmdk_allowed_types``;
3. ``qemu-img convert -f <format> -O <output_format>`` writes a new file beside the staged
   data, which is inspected again (a format hidden in another is refused), then renamed over
   the staged data. The image's ``disk_format`` becomes the output format, ``container_format``
   ``bare``, ``virtual_size`` what ``qemu-img`` reported; the worker records ``size`` and the
   hashes of what it then stores. Data already in the output format is not converted, and a
   raw result larger than ``image_size_cap`` is refused before it is written (upstream finds
   out when the store refuses it).

On failure nothing of the conversion is left and the import fails with the reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_utils import units

from glance_service.images import format_inspector
from glance_service.images.import_plugins import PluginError
from glance_service.images.import_plugins.files import partial_beside, replace

LOG = logging.getLogger(__name__)

# Upstream's limits for qemu-img info (glance/async_/utils.py QEMU_IMG_PROC_LIMITS): a crafted
# header must not make it eat the host.
QEMU_IMG_PROC_LIMITS = processutils.ProcessLimits(cpu_time=2, address_space=1 * units.Gi)
# Glance's disk_format -> qemu-img's driver name.
QEMU_FORMATS = {"vhd": "vpc"}
BLOCK = 1024 * 1024
BEAT = 5.0  # seconds between heartbeats while qemu-img converts


def inspect_file(
    path: str, disk_format: str, vmdk_allowed_types, beat=lambda: None
) -> format_inspector.Verdict:
    """The verdict of the project's inspector on the file; ``PluginError`` if refused."""
    inspector = format_inspector.StreamInspector(
        disk_format, require_match=True, vmdk_allowed_types=vmdk_allowed_types
    )
    try:
        with open(path, "rb") as fileobj:
            while buf := fileobj.read(BLOCK):
                beat()
                inspector.feed(buf)
        return inspector.finish()
    except format_inspector.FormatError as exc:
        raise PluginError(f"Image has disallowed configuration: {exc}") from None


def check_info(info: dict, qemu_format: str, vmdk_allowed_types) -> None:
    """Upstream's checks of ``qemu-img info``'s answer (``PluginError`` with its messages)."""
    if info.get("format") != qemu_format:
        raise PluginError("Image metadata disagrees about format")
    if "backing-filename" in info:
        raise PluginError("QCOW images with backing files are not allowed")
    data = (info.get("format-specific") or {}).get("data") or {}
    if data.get("data-file") is not None:
        raise PluginError("QCOW images with data-file set are not allowed")
    if qemu_format == "vmdk":
        create_type = data.get("create-type")
        if not create_type:
            raise PluginError("Unable to determine VMDK create-type")
        if not vmdk_allowed_types:
            raise PluginError("Image is a VMDK, but no VMDK createType is specified")
        if create_type not in vmdk_allowed_types:
            raise PluginError("Invalid VMDK create-type specified")


def qemu_img_info(path: str, qemu_format: str) -> dict:
    try:
        out, err = processutils.trycmd(
            "qemu-img",
            "info",
            "-f",
            qemu_format,
            "--output=json",
            path,
            prlimit=QEMU_IMG_PROC_LIMITS,
            python_exec=sys.executable,
            log_errors=processutils.LOG_ALL_ERRORS,
        )
    except OSError as exc:
        raise PluginError(f"Image introspection failed (qemu-img info): {exc}") from None
    if err:
        raise PluginError(f"qemu-img info failed: {err.strip()}")
    try:
        return json.loads(out)
    except ValueError:
        raise PluginError("qemu-img info gave no readable answer") from None


def qemu_img_convert(src: str, qemu_format: str, dest: str, target: str, beat) -> None:
    cmd = ["qemu-img", "convert", "-f", qemu_format, "-O", target, src, dest]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    except OSError as exc:
        raise PluginError(f"Image conversion failed (qemu-img): {exc}") from None
    try:
        while True:
            try:
                _, err = proc.communicate(timeout=BEAT)
                break
            except subprocess.TimeoutExpired:
                beat()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0 or err:
        text = err.decode(errors="replace").strip() or f"exit status {proc.returncode}"
        raise PluginError(f"Image conversion failed: {text}")


def run(job) -> None:
    target = job.conf.image_conversion.output_format
    source = job.get("disk_format") or "raw"
    allowed = list(job.conf.image_format.vmdk_allowed_types)
    verdict = inspect_file(job.path, source, allowed, job.beat)
    detected = verdict.detected
    if detected == "gpt":
        detected = None  # upstream takes GPT as raw
    if detected == "iso":
        if source == "iso":
            LOG.debug("Import of image %s: an ISO is not converted", job.image_id)
            return
        raise PluginError("Image has disallowed configuration: ISO content declared as " + source)
    if (detected or "raw") != source:
        raise PluginError("Image format mismatch")
    qemu_format = QEMU_FORMATS.get(source, source)
    info = qemu_img_info(job.path, qemu_format)
    check_info(info, qemu_format, allowed)
    job.values["virtual_size"] = info.get("virtual-size") or verdict.virtual_size
    if source == target:
        LOG.debug("Import of image %s: already %s, not converted", job.image_id, target)
        return
    cap = job.conf.image_size_cap
    if target == "raw" and cap and job.values["virtual_size"] > cap:
        # The store would refuse the raw data anyway, once qemu-img had written all of it.
        raise PluginError(f"The converted image would be larger than image_size_cap ({cap} bytes).")
    with partial_beside(job.path, target) as (tmp, fileobj):
        started = time.monotonic()
        qemu_img_convert(job.path, qemu_format, tmp, target, job.beat)
        out = inspect_file(tmp, target, allowed, job.beat)
        if (out.detected if out.detected != "gpt" else None) != (None if target == "raw" else target):
            raise PluginError("Converted image in unexpected format")
        replace(tmp, job.path, fileobj)
    job.values.update(disk_format=target, container_format="bare")
    job.data_changed = True
    LOG.info(
        "Import of image %s: converted from %s to %s in %.1fs (%d bytes)",
        job.image_id,
        source,
        target,
        time.monotonic() - started,
        out.size,
    )
