"""With FILES_STORE=s3, a photo a patient sends on WhatsApp is fetched from the provider,
stored in the clinic's bucket (a local S3 over real HTTP) and served from there to the
attendant who serves the conversation."""

from __future__ import annotations

import dataclasses

import pytest

from channels.whatsapp import WhatsAppChannel
from core.settings import Settings
from handoff.transitions import queueing
from tests.channels.test_files_in import PNG, inbound_with_files, whatsapp_image
from tests.factories import staff
from tests.webapp import logged_in, web_server


@pytest.fixture
async def bucket(s3_server) -> str:
    return await s3_server.new_bucket()


@pytest.fixture
def channel_settings(channel_settings, s3_server, bucket) -> Settings:
    """The channels' test configuration, its files in the bucket (as a child process of the
    clinic would read it)."""
    return Settings.from_env(
        {**channel_settings.child_env(), **s3_server.env(bucket, S3_PREFIX="arquivos")}
    )


async def test_a_whatsapp_photo_is_kept_in_the_bucket_and_served_to_staff(
    serve, provider, s3_server, bucket, channel_settings
):
    served = await serve(WhatsAppChannel)

    status, _ = await served.deliver(whatsapp_image(provider, PNG))
    await served.settle()

    assert status == 200
    message = await inbound_with_files(served)
    key = message.attachments[0]["file"]
    assert await s3_server.objects(bucket) == {f"arquivos/{key}": PNG}

    ana = await staff(served.ctx.db, capacity=1)
    await queueing.request_handoff(served.ctx, message.conversation_id, reason="pedido_do_paciente")
    # The workspace on plain local HTTP, where its login cookie is not https-only.
    workspace = dataclasses.replace(channel_settings, public_base_url=channel_settings.web_url)
    async with web_server(workspace) as server:
        http = await logged_in(server, ana.email, "senha-segura")
        try:
            async with http.get(f"/api/files/{key}") as response:
                assert response.status == 200
                assert response.content_type == "image/png"
                assert await response.read() == PNG
        finally:
            await http.close()
