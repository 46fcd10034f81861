"""Writes image data to an S3 bucket (Ceph RADOS Gateway, AWS, MinIO): our own upload path.

glance_store's ``s3`` driver keeps the options (``s3_store_host``, ``s3_store_access_key``,
``s3_store_secret_key``, ``s3_store_bucket``, ``s3_store_create_bucket_on_put``,
``s3_store_large_object_size``, ``s3_store_large_object_chunk_size``,
``s3_store_thread_pools``, ...), builds the boto3 client, reads and deletes; this module only
replaces its ``add()`` and writes what that ``add()`` writes: the object ``<bucket>/<image id>``
at the location ``s3://<host>/<bucket>/<image id>`` (``s3+https://`` for TLS endpoints).

Why not the driver's ``add()`` (glance_store 5.7.0):

* an upload without a declared size (glanceclient's chunked uploads) is taken for a small one
  and collected in memory, by repeated ``bytes +=``, before one ``put_object``: the whole image
  in RAM, quadratic copying;
* large uploads queue every part to a thread pool without a bound, so memory grows with the
  image when the gateway is slower than the client, and a client that cuts the upload leaves an
  incomplete multipart upload behind (its parts stay in the bucket's pools);
* md5 and sha512 are computed in the reading loop, one after the other.

Here: data is read in 1 MiB buffers and hashed in two threads (``ParallelHasher``); an image
smaller than one part is sent with one ``put_object``; anything else goes as a multipart upload
with at most ``max_in_flight`` parts in memory at once, part size growing with the part number
so that 10,000 parts reach past any size cap; any failure aborts the multipart upload.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading

from glance_service import exceptions
from glance_service.store.hashing import ParallelHasher
from glance_service.store.source import Incoming, StoredData, translated

LOG = logging.getLogger(__name__)

MAX_PARTS = 10000
MIN_PART = 5 * 1024 * 1024  # S3's minimum for every part but the last
MAX_IN_FLIGHT = 4


def part_size(base: int, number: int) -> int:
    """The size of part ``number`` (1-based): ``base`` for the first 1000, twice that for the next
    1000, and so on: 10,000 parts hold 55,000 x ``base`` (550 GB with 10 MiB parts)."""
    return max(base, MIN_PART) * (1 + (number - 1) // 1000)


def _client_error(exc: Exception) -> bool:
    return type(exc).__name__ in ("ClientError", "EndpointConnectionError", "ConnectionClosedError")


class _Upload:
    """One object's upload: a single PUT, or a multipart upload with bounded parts in flight."""

    def __init__(self, client, bucket: str, key: str, base_part: int, in_flight: int):
        self.client, self.bucket, self.key = client, bucket, key
        self.base_part = base_part
        self.upload_id: str | None = None
        self._parts: dict[int, str] = {}
        self._slots = threading.BoundedSemaphore(in_flight)
        self._pool = concurrent.futures.ThreadPoolExecutor(in_flight, thread_name_prefix="s3-part")
        self._futures: list[concurrent.futures.Future] = []

    def send_part(self, number: int, data: bytes) -> None:
        if self.upload_id is None:
            self.upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key)["UploadId"]
        for fut in [f for f in self._futures if f.done()]:
            fut.result()  # raises a failed part's error here, in the request's thread
            self._futures.remove(fut)
        self._slots.acquire()  # at most ``in_flight`` parts in memory
        try:
            self._futures.append(self._pool.submit(self._upload_part, number, data))
        except BaseException:
            self._slots.release()
            raise

    def _upload_part(self, number: int, data: bytes) -> None:
        try:
            out = self.client.upload_part(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data
            )
            self._parts[number] = out["ETag"]
        finally:
            self._slots.release()

    def complete(self) -> None:
        for fut in concurrent.futures.as_completed(self._futures):
            fut.result()
        self._futures.clear()
        parts = [{"PartNumber": n, "ETag": self._parts[n]} for n in sorted(self._parts)]
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": parts}
        )
        self.upload_id = None

    def abort(self) -> None:
        for fut in self._futures:
            fut.cancel()
        concurrent.futures.wait(self._futures)
        if self.upload_id is not None:
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
            except Exception as exc:  # noqa: BLE001 - the upload's own error matters more
                LOG.error("Could not abort the multipart upload of %s: %s", self.key, exc)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def add(driver, data: Incoming) -> StoredData:
    """Store ``data`` as object ``data.image_id`` with glance_store's ``driver`` settings."""
    key, expected_size = str(data.image_id), data.expected_size
    with translated(lambda exc: _translate(exc, key)):
        client = driver._create_s3_client()
        _ensure_bucket(driver, client)
        if driver._object_exists(client, driver.bucket, key):
            raise exceptions.Duplicate(f"Data for image {key} already exists in the store.")
        base = int(driver.s3_store_large_object_chunk_size)
        if expected_size:
            # a declared size picks a part size that fits 10,000 parts
            base = max(base, -(-expected_size // MAX_PARTS))
        in_flight = max(1, min(int(driver.s3_store_thread_pools), MAX_IN_FLIGHT))
        upload = _Upload(client, driver.bucket, key, base, in_flight)
        try:
            size, checksum, hash_value = _stream(upload, data)
        finally:
            upload.close()
    url = f"{driver.scheme}://{_host(driver.full_s3_host)}/{driver.bucket}/{key}"
    return StoredData(url, size, checksum, data.hash_algo, hash_value, {})


def _host(full_host: str) -> str:
    # glance_store's StoreLocation drops the http(s):// of s3_store_host in the location
    for prefix in ("https://", "http://"):
        if full_host.startswith(prefix):
            return full_host[len(prefix) :].strip("/")
    return full_host.strip("/")


def _ensure_bucket(driver, client) -> None:
    if driver._bucket_exists(client, driver.bucket):
        return
    if not driver._option_get("s3_store_create_bucket_on_put"):
        raise exceptions.StoreUnavailable(
            f"The S3 bucket '{driver.bucket}' does not exist; create it or set "
            "[glance_store] s3_store_create_bucket_on_put = true."
        )
    driver._create_bucket(
        client, driver._option_get("s3_store_host"), driver.bucket, driver._option_get("s3_store_region_name")
    )


def _stream(upload: _Upload, data: Incoming) -> tuple[int, str, str]:
    hasher = ParallelHasher(data.hash_algo)
    number = 1
    pending: list[bytes] = []
    pending_len = 0
    done = False
    try:
        for buf in data:
            hasher.update(buf)
            pending.append(buf)
            pending_len += len(buf)
            target = part_size(upload.base_part, number)
            if pending_len >= target:
                joined = b"".join(pending)
                upload.send_part(number, joined[:target])
                number += 1
                rest = joined[target:]
                pending, pending_len = ([rest] if rest else []), len(rest)
        checksum, hash_value = hasher.hexdigests()
        if upload.upload_id is None:
            # smaller than one part (or empty): one PUT, nothing to abort if it fails
            upload.client.put_object(Bucket=upload.bucket, Key=upload.key, Body=b"".join(pending))
        else:
            if pending:
                upload.send_part(number, b"".join(pending))
            upload.complete()
        done = True
    finally:
        if not done:
            hasher.abort()
            upload.abort()
    return data.size, checksum, hash_value


def discard(driver, image_id: str) -> None:
    """Abort the multipart uploads an interrupted upload of ``image_id`` left (its parts take space
    and never show in a listing of objects). Best effort: logged, never raised."""
    key = str(image_id)
    try:
        client = driver._create_s3_client()
        out = client.list_multipart_uploads(Bucket=driver.bucket, Prefix=key)
        for upload in out.get("Uploads", []):
            if upload["Key"] == key:
                client.abort_multipart_upload(Bucket=driver.bucket, Key=key, UploadId=upload["UploadId"])
    except Exception as exc:  # noqa: BLE001 - best effort, logged
        LOG.error("Could not check the s3 store for partial data of %s: %s", key, exc)


def _translate(exc: Exception, key: str) -> exceptions.GlanceServiceError:
    code = ""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
    if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
        LOG.error("The S3 store denied access while writing %s: %s", key, exc)
        return exceptions.StoreUnavailable("The S3 store denied write access.")
    if code in ("QuotaExceeded", "EntityTooLarge"):
        return exceptions.StorageFull()
    LOG.error("The S3 store failed while writing %s: %s", key, exc)
    if _client_error(exc) or isinstance(exc, OSError):
        return exceptions.StoreUnavailable(f"The S3 store could not be reached: {exc}")
    return exceptions.StoreUnavailable(f"The S3 store failed: {exc}")
