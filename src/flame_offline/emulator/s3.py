"""A hospital's data: the hub adapter's data store list and the s3 bucket behind Kong.

In production a project's data store is a Kong service named ``{PROJECT_ID}-s3`` whose route
``/{PROJECT_ID}-s3/s3`` is guarded by key-auth (the analysis's ``DATA_SOURCE_TOKEN`` as the
``apikey`` header) and backed by an S3 bucket (MinIO gateway). The analysis reaches:

- ``GET /hub-adapter/kong/datastore/{PROJECT_ID}`` (Bearer token) -> ``{"data": [service]}``,
  the Kong services (data stores) of the project;
- ``GET /kong/{name}/s3`` -> the bucket listing, S3 ``ListBucketResult`` XML;
- ``GET /kong/{name}/s3/{key}`` -> the object's bytes (S3 ``NoSuchKey`` XML, 404, when absent).

Here a hospital's folder is its one bucket: every regular file in it (hidden files and
subfolders left out) is an object whose key is the file name and whose content is its bytes.
The aggregator has no data store.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path
from urllib.parse import unquote
from xml.sax.saxutils import escape

from flame_offline.emulator.spec import AnalysisSpec, NodeSpec
from flame_offline.emulator.web import Request, Response

__all__ = ["DataStores", "read_bucket"]

_S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def read_bucket(folder: Path) -> dict[str, bytes]:
    """Read a hospital folder as a bucket: file name -> bytes, sorted by name."""
    return {
        entry.name: entry.read_bytes()
        for entry in sorted(folder.iterdir())
        if entry.is_file() and not entry.name.startswith(".")
    }


class DataStores:
    """Each hospital's data store, read once when the run starts (as a bucket snapshot)."""

    def __init__(self, spec: AnalysisSpec) -> None:
        self.spec = spec
        self._buckets = {
            node.name: read_bucket(node.hospital_dir)
            for node in spec.hospitals
            if node.hospital_dir
        }
        self._service_ids = {
            name: str(uuid.uuid5(uuid.NAMESPACE_URL, name)) for name in self._buckets
        }
        self._created = int(time.time())

    @property
    def store_name(self) -> str:
        """The name of the project's s3 store, as the Hub adapter lists it."""
        return f"{self.spec.project_id}-s3"

    def handle_hub_adapter(self, node: NodeSpec, request: Request) -> Response:
        """``/hub-adapter`` requests (path without that prefix)."""
        if request.bearer() != node.keycloak_token:
            return Response.error(401, "Not authenticated")
        if (
            request.method != "GET"
            or request.path.rstrip("/") != f"/kong/datastore/{self.spec.project_id}"
        ):
            return Response.error(404, "Not Found")
        services = []
        if node.name in self._buckets:
            services.append(
                {
                    "id": self._service_ids[node.name],
                    "name": self.store_name,
                    "protocol": "http",
                    "host": f"minio-{node.name}",
                    "port": 9000,
                    "path": f"/{node.name}",
                    "enabled": True,
                    "retries": 5,
                    "connect_timeout": 60000,
                    "read_timeout": 60000,
                    "write_timeout": 60000,
                    "tags": [self.spec.project_id, self.store_name],
                    "created_at": self._created,
                    "updated_at": self._created,
                }
            )
        return Response.json(200, {"data": services, "offset": None})

    def handle_kong(self, node: NodeSpec, request: Request) -> Response:
        """``/kong`` requests (path without that prefix)."""
        if "apikey" not in request.headers:
            return Response.json(401, {"message": "No API key found in request"})
        if request.headers["apikey"] != node.data_source_token:
            return Response.json(401, {"message": "Invalid authentication credentials"})
        parts = request.path.split("/", 3)  # '', name, 's3', key
        bucket = self._buckets.get(node.name)
        if (
            len(parts) < 3
            or parts[1] != self.store_name
            or parts[2] != "s3"
            or bucket is None
            or request.method not in ("GET", "HEAD")
        ):
            return Response.json(404, {"message": "no Route matched with those values"})
        key = unquote(parts[3]) if len(parts) == 4 else ""
        if not key:
            return Response(200, self._listing(node.name, bucket), "application/xml")
        if key not in bucket:
            return Response(404, self._no_such_key(key), "application/xml")
        return Response(200, bucket[key], "application/octet-stream")

    def _listing(self, name: str, bucket: dict[str, bytes]) -> bytes:
        modified = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(self._created))
        contents = "".join(
            "<Contents>"
            f"<Key>{escape(key)}</Key>"
            f"<LastModified>{modified}</LastModified>"
            f"<ETag>&quot;{hashlib.md5(data, usedforsecurity=False).hexdigest()}&quot;</ETag>"
            f"<Size>{len(data)}</Size>"
            "<StorageClass>STANDARD</StorageClass>"
            "</Contents>"
            for key, data in bucket.items()
        )
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<ListBucketResult xmlns="{_S3_NS}">'
            f"<Name>{escape(name)}</Name><Prefix></Prefix><Marker></Marker>"
            f"<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>"
            f"{contents}</ListBucketResult>"
        )
        return xml.encode("utf-8")

    @staticmethod
    def _no_such_key(key: str) -> bytes:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            "<Error><Code>NoSuchKey</Code>"
            "<Message>The specified key does not exist.</Message>"
            f"<Key>{escape(key)}</Key></Error>"
        ).encode()
