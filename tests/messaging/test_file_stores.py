"""The stores that keep the bytes of stored files behave alike: the filesystem under
FILES_DIR and an S3-compatible bucket (a local S3 over real HTTP). A file stored reads back
whole, a deleted one is gone, a key that holds nothing reads as not found, and nothing but a
file key names a file. In the bucket, files are private, encrypted at rest, under the
configured prefix, and erasure leaves no old version behind."""

from __future__ import annotations

import os
import secrets

import pytest

from core.settings import Settings
from messaging.files import StoreNotAvailable, store_for

# A PDF with a body no text encoding would leave intact.
CONTENT = b"%PDF-1.4\n" + os.urandom(64 * 1024) + b"\n%%EOF\n"


def _settings(**env: str) -> Settings:
    return Settings.from_env(
        {
            "INTERNAL_TOKEN": "internal-test-token",
            "SESSION_SECRET": "session-test-secret",
            "RASA_TOKEN": "rasa-test-token",
            **env,
        }
    )


def _key() -> str:
    return secrets.token_urlsafe(24)


@pytest.fixture(params=["filesystem", "s3"])
async def settings(request, tmp_path) -> Settings:
    if request.param == "filesystem":
        return _settings(FILES_STORE="filesystem", FILES_DIR=str(tmp_path / "files"))
    s3_server = request.getfixturevalue("s3_server")
    return _settings(**s3_server.env(await s3_server.new_bucket()))


async def test_a_stored_file_reads_back_whole(settings):
    key = _key()

    await store_for(settings).put(key, CONTENT)

    assert await store_for(settings).get(key) == CONTENT


async def test_a_deleted_file_is_gone_and_deleting_it_again_is_no_error(settings):
    store = store_for(settings)
    key = _key()
    await store.put(key, CONTENT)

    await store.delete(key)
    await store.delete(key)

    with pytest.raises(FileNotFoundError):
        await store.get(key)


async def test_a_key_that_holds_nothing_reads_as_not_found(settings):
    with pytest.raises(FileNotFoundError):
        await store_for(settings).get(_key())


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b", "curta", ""])
async def test_nothing_but_a_file_key_names_a_file(settings, name):
    store = store_for(settings)
    for operation in (store.get(name), store.put(name, CONTENT), store.delete(name)):
        with pytest.raises(ValueError, match="not a file key"):
            await operation


async def test_in_the_bucket_files_are_private_encrypted_and_under_the_prefix(s3_server):
    bucket = await s3_server.new_bucket()
    settings = _settings(**s3_server.env(bucket, S3_PREFIX="/clinica-centro/arquivos/"))
    key = _key()

    await store_for(settings).put(key, CONTENT)

    name = f"clinica-centro/arquivos/{key}"
    assert await s3_server.objects(bucket) == {name: CONTENT}
    async with s3_server.client() as s3:
        head = await s3.head_object(Bucket=bucket, Key=name)
        acl = await s3.get_object_acl(Bucket=bucket, Key=name)
    assert head["ServerSideEncryption"] == "AES256"
    # Only the owner's own grant: no public or authenticated-users read.
    assert [(g["Grantee"]["Type"], g["Permission"]) for g in acl["Grants"]] == [
        ("CanonicalUser", "FULL_CONTROL")
    ]


async def test_erasure_leaves_no_old_version_in_a_versioned_bucket(s3_server):
    bucket = await s3_server.new_bucket(versioned=True)
    store = store_for(_settings(**s3_server.env(bucket)))
    key = _key()
    await store.put(key, CONTENT)

    await store.delete(key)

    async with s3_server.client() as s3:
        listed = await s3.list_object_versions(Bucket=bucket)
    assert listed.get("Versions", []) == listed.get("DeleteMarkers", []) == []


async def test_the_s3_store_starts_with_a_bucket_and_refuses_to_without_one(s3_server):
    configured = s3_server.env(await s3_server.new_bucket())

    assert store_for(_settings(**configured)) is not None
    with pytest.raises(StoreNotAvailable, match="S3_BUCKET"):
        store_for(_settings(**{**configured, "S3_BUCKET": ""}))
    with pytest.raises(StoreNotAvailable, match="S3_SERVER_SIDE_ENCRYPTION"):
        store_for(_settings(**{**configured, "S3_SERVER_SIDE_ENCRYPTION": "rot13"}))


def test_the_s3_settings_reach_every_process_of_the_clinic():
    env = {
        "FILES_STORE": "s3",
        "S3_BUCKET": "clinica-arquivos",
        "S3_ENDPOINT_URL": "https://minio.clinica.test:9000",
        "S3_REGION": "sa-east-1",
        "S3_ACCESS_KEY_ID": "clinica",
        "S3_SECRET_ACCESS_KEY": "segredo",
        "S3_PREFIX": "centro",
        "S3_SERVER_SIDE_ENCRYPTION": "aws:kms",
    }

    child_env = _settings(**env).child_env()

    assert {name: child_env[name] for name in env} == env
