"""A local S3 over real HTTP (moto's server on a free port) for the S3 file store: each test
makes its own bucket, and reads what the service holds through the same client library the
platform uses."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiobotocore.session import get_session
from moto.server import ThreadedMotoServer

REGION = "us-east-1"


class S3Server:
    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.url = ""

    def start(self) -> None:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.stop()

    def env(self, bucket: str, **more: str) -> dict[str, str]:
        """The platform's configuration for `bucket` on this server."""
        return {
            "FILES_STORE": "s3",
            "S3_BUCKET": bucket,
            "S3_ENDPOINT_URL": self.url,
            "S3_REGION": REGION,
            "S3_ACCESS_KEY_ID": "clinica-teste",
            "S3_SECRET_ACCESS_KEY": "segredo-teste",
            **more,
        }

    @asynccontextmanager
    async def client(self) -> AsyncIterator[Any]:
        async with get_session().create_client(
            "s3",
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id="observador",
            aws_secret_access_key="observador",
        ) as s3:
            yield s3

    async def new_bucket(self, *, versioned: bool = False) -> str:
        name = f"clinica-{uuid.uuid4().hex[:16]}"
        async with self.client() as s3:
            await s3.create_bucket(Bucket=name)
            if versioned:
                await s3.put_bucket_versioning(
                    Bucket=name, VersioningConfiguration={"Status": "Enabled"}
                )
        return name

    async def objects(self, bucket: str) -> dict[str, bytes]:
        """Every object the bucket holds now, by name."""
        found = {}
        async with self.client() as s3:
            listed = await s3.list_objects_v2(Bucket=bucket)
            for item in listed.get("Contents", []):
                response = await s3.get_object(Bucket=bucket, Key=item["Key"])
                async with response["Body"] as body:
                    found[item["Key"]] = await body.read()
        return found
