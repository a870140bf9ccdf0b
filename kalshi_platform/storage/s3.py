"""S3 (and S3-compatible) access for the historical tier through ``pyarrow.fs.S3FileSystem``.

Credentials follow pyarrow's standard chain (pyarrow docs "S3FileSystem"): the
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN`` environment
variables, then ``~/.aws`` files, then EC2 instance metadata. ``endpoint_url`` points at an
S3-compatible store (MinIO, Ceph, moto): ``http://host:port`` or ``https://host``; the scheme
picks TLS. Buckets are never created here: a missing bucket is an error.

Objects mirror the local layout under the URI's prefix::

    s3://bucket/prefix/<table>/date=YYYY-MM-DD/<file>.parquet
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs as pafs


class S3Error(OSError):
    """A bad S3 URI or endpoint, a missing bucket, or a failed transfer."""


@dataclass(frozen=True)
class S3Location:
    """``s3://bucket/prefix``: ``bucket`` and ``prefix`` (no leading/trailing slash)."""

    bucket: str
    prefix: str = ""

    def key(self, *parts: str) -> str:
        """``bucket/prefix/part/...`` as pyarrow's S3 paths spell it (no scheme)."""
        return "/".join(p.strip("/") for p in (self.bucket, self.prefix, *parts) if p)

    @property
    def uri(self) -> str:
        return "s3://" + self.key()


def parse_s3_uri(uri: str) -> S3Location:
    """Parse ``s3://bucket[/prefix]``. Raises :class:`S3Error` on anything else."""
    u = urlparse(uri)
    if u.scheme != "s3" or not u.netloc:
        raise S3Error(f"{uri!r} is not an s3://bucket[/prefix] URI")
    return S3Location(u.netloc, u.path.strip("/"))


def s3_filesystem(endpoint_url: str | None = None, region: str | None = None,
                  *, connect_timeout_s: float = 10.0, request_timeout_s: float = 60.0
                  ) -> pafs.S3FileSystem:
    """An ``S3FileSystem`` for AWS (no ``endpoint_url``) or an S3-compatible endpoint.

    ``endpoint_url``: ``http(s)://host[:port]`` (a bare ``host:port`` means https).
    ``region``: signing region (``us-east-1`` when empty). Raises :class:`S3Error` for a
    malformed endpoint.
    """
    kwargs: dict = {"region": region or "us-east-1", "connect_timeout": connect_timeout_s,
                    "request_timeout": request_timeout_s}
    if endpoint_url:
        u = urlparse(endpoint_url if "://" in endpoint_url else f"https://{endpoint_url}")
        if u.scheme not in ("http", "https") or not u.netloc or u.path not in ("", "/"):
            raise S3Error(f"S3 endpoint {endpoint_url!r} must look like http(s)://host[:port]")
        kwargs.update(endpoint_override=u.netloc, scheme=u.scheme)
    return pafs.S3FileSystem(**kwargs)


def check_bucket(fs: pafs.FileSystem, loc: S3Location) -> None:
    """Raise :class:`S3Error` unless ``loc.bucket`` exists and is reachable."""
    try:
        info = fs.get_file_info(loc.bucket)
    except OSError as e:
        raise S3Error(f"cannot reach bucket {loc.bucket!r}: {e}") from None
    if info.type != pafs.FileType.Directory:
        raise S3Error(f"bucket {loc.bucket!r} does not exist")


def upload_file(fs: pafs.FileSystem, local: Path, key: str, *, block: int = 8 << 20) -> int:
    """Copy ``local`` to object ``key`` (``bucket/path``), streaming ``block`` bytes at a time
    (pyarrow uploads in multipart parts; the object appears only when complete). Returns the
    bytes sent. Raises :class:`S3Error`."""
    sent = 0
    try:
        with open(local, "rb") as src, fs.open_output_stream(key) as dst:
            while True:
                buf = src.read(block)
                if not buf:
                    break
                dst.write(buf)
                sent += len(buf)
    except OSError as e:
        raise S3Error(f"upload of {local.name} to s3://{key} failed: {e}") from None
    return sent


def list_keys(fs: pafs.FileSystem, prefix_key: str) -> dict[str, int]:
    """Object keys directly under ``prefix_key`` (a "directory") → size; empty if none."""
    try:
        infos = fs.get_file_info(pafs.FileSelector(prefix_key, allow_not_found=True))
    except OSError as e:
        raise S3Error(f"cannot list s3://{prefix_key}: {e}") from None
    return {i.path: i.size for i in infos if i.type == pafs.FileType.File}


def delete_keys(fs: pafs.FileSystem, keys: list[str]) -> None:
    """Delete objects (missing ones are not an error). Raises :class:`S3Error`."""
    for k in keys:
        try:
            fs.delete_file(k)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise S3Error(f"cannot delete s3://{k}: {e}") from None
