"""What every transition checks before it changes anything (handoff.transitions.common,
on core.access's rules)."""

import pytest

from core.errors import BadRequest, ClinicError, Forbidden, NotFound
from handoff.transitions import common, moves, reception, resolution, talking
from tests.factories import staff
from tests.handoff.steps import handed_off


async def test_an_attendant_cannot_act_in_a_colleagues_conversation(ctx):
    await staff(ctx.db, capacity=1)
    conversation_id = await handed_off(ctx)
    intruder = await staff(ctx.db)
    third = await staff(ctx.db)

    for attempt in (
        talking.reply(ctx, conversation_id, intruder, "oi"),
        talking.add_note(ctx, conversation_id, intruder, "nota"),
        resolution.resolve(ctx, conversation_id, intruder),
        moves.transfer(ctx, conversation_id, intruder, third.id),
        reception.record_action(ctx, conversation_id, intruder, "exams_delivered"),
        moves.reassign(ctx, conversation_id, intruder, third.id),
        moves.take_over(ctx, conversation_id, intruder),
    ):
        with pytest.raises(Forbidden):
            await attempt


def test_every_refusal_is_a_clinic_error_with_the_http_status_of_what_it_means():
    refusals = {
        common.ConversationNotFound: (NotFound, 404, "error.not_found"),
        common.StaffOnly: (Forbidden, 403, "error.forbidden"),
        common.ManagersOnly: (Forbidden, 403, "error.forbidden"),
        common.NotOwner: (Forbidden, 403, "error.not_owner"),
        moves.ManualTakeDisabled: (Forbidden, 403, "error.manual_take_disabled"),
        reception.NotThePatientsAppointment: (NotFound, 404, "error.not_found"),
        reception.UnknownAction: (BadRequest, 400, "error.unknown_action"),
        reception.BadSlot: (BadRequest, 400, "agenda.error.pick_a_slot"),
        common.ConversationClosed: (ClinicError, 409, "error.conversation_closed"),
        common.NotWithPerson: (ClinicError, 409, "error.not_with_person"),
        common.AttendantUnavailable: (ClinicError, 409, "error.attendant_unavailable"),
        moves.NotQueued: (ClinicError, 409, "error.not_queued"),
        talking.ChannelUnavailable: (ClinicError, 409, "error.channel_unavailable"),
        talking.ChannelBusy: (ClinicError, 409, "error.channel_busy"),
    }
    for refusal, (kind, status, code) in refusals.items():
        error = refusal()
        assert isinstance(error, common.TransitionError) and isinstance(error, kind), refusal
        assert (error.status, error.code) == (status, code), refusal
    refused = reception.Refused("agenda.error.invalid_transition")
    assert (refused.status, refused.code) == (409, "agenda.error.invalid_transition")


async def test_acting_in_a_conversation_that_does_not_exist_is_not_found(ctx):
    ana = await staff(ctx.db)

    with pytest.raises(common.ConversationNotFound):
        await talking.reply(ctx, 999_999, ana, "oi")
