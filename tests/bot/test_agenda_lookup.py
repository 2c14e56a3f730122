"""The booking dialogue reads specialties and doctors from the agenda the admin set up, not
from the model's training data: a specialty or doctor added in the app is offered and
understood at once (typed with or without accents, slightly mistyped, or mislabelled by the
model), and one without an active doctor is no longer offered."""

from __future__ import annotations

from datetime import date, timedelta

from rasa_sdk.executor import CollectingDispatcher

from bot.actions.booking import ActionAskEspecialidade, ValidateAgendamentoForm
from models import Role
from scheduling import setup
from tests.bot.conftest import tracker
from tests.factories import staff


async def _endocrinology(clinic) -> tuple[int, int]:
    """Endocrinologia (never in the training data) and Dra. Beatriz Moura, who serves it."""
    admin = await staff(clinic.db, Role.ADMIN)
    specialty = await setup.create_specialty(clinic.db, admin, "Endocrinologia")
    form = setup.doctor_form(
        {
            "name": "Dra. Beatriz Moura",
            "specialty_ids": [specialty.id],
            "convenios": ["Unimed"],
            "slot_minutes": 20,
            "hours": [{"weekday": 1, "starts": "14:00", "ends": "18:00"}],
        }
    )
    doctor = await setup.create_doctor(clinic.db, admin, form)
    return specialty.id, doctor.id


async def _understood(text: str, *, entities: dict[str, str] | None = None, asked: bool = False):
    """What the booking form keeps as `especialidade` (and `medico`) for a message."""
    form, dispatcher = ValidateAgendamentoForm(), CollectingDispatcher()
    slots = {"requested_slot": "especialidade"} if asked else {}
    turn = tracker(1, text, intent="agendar_consulta", entities=entities, slots=slots)
    extracted = await form.extract_especialidade(dispatcher, turn, {})
    if "especialidade" not in extracted:
        return None
    return await form.validate_especialidade(extracted["especialidade"], dispatcher, turn, {})


async def test_a_specialty_added_in_the_app_is_offered_as_a_button_at_once(clinic_db):
    await _endocrinology(clinic_db)
    dispatcher = CollectingDispatcher()

    await ActionAskEspecialidade().run(dispatcher, tracker(1, "quero marcar"), {})

    titles = [b["title"] for b in dispatcher.messages[0]["buttons"]]
    assert "Endocrinologia" in titles
    assert titles == sorted(titles)


async def test_the_patients_own_words_name_a_specialty_the_model_never_saw(clinic_db):
    specialty_id, _ = await _endocrinology(clinic_db)

    for typed in ("quero marcar endocrinologia", "ENDOCRINOLOGIA", "quero edocrinologia"):
        understood = await _understood(typed)
        assert understood is not None, typed
        assert understood["especialidade"] == {"id": specialty_id, "nome": "Endocrinologia"}


async def test_an_entity_the_agenda_does_not_know_gives_way_to_the_text(clinic_db):
    specialty_id, _ = await _endocrinology(clinic_db)

    understood = await _understood(
        "quero marcar endocrinologia", entities={"especialidade": "ortopedia"}
    )

    assert understood["especialidade"]["id"] == specialty_id


async def test_a_doctor_added_in_the_app_is_found_by_name_even_mistyped(clinic_db):
    specialty_id, doctor_id = await _endocrinology(clinic_db)

    understood = await _understood("com a dra Beatris", asked=True)

    assert understood["medico"] == {"id": doctor_id, "nome": "Dra. Beatriz Moura"}
    assert understood["especialidade"]["id"] == specialty_id


async def test_a_specialty_whose_only_doctor_has_left_is_no_longer_offered(clinic_db):
    specialty_id, doctor_id = await _endocrinology(clinic_db)
    admin = await staff(clinic_db.db, Role.ADMIN)
    ended = setup.doctor_form(
        {
            "name": "Dra. Beatriz Moura",
            "specialty_ids": [specialty_id],
            "slot_minutes": 20,
            "hours": [{"weekday": 1, "starts": "14:00", "ends": "18:00"}],
            "active_until": (date.today() - timedelta(days=2)).isoformat(),
        }
    )
    await setup.update_doctor(clinic_db.db, admin, doctor_id, ended)
    dispatcher = CollectingDispatcher()

    await ActionAskEspecialidade().run(dispatcher, tracker(1, "quero marcar"), {})

    titles = [b["title"] for b in dispatcher.messages[0]["buttons"]]
    assert "Endocrinologia" not in titles
    assert "Cardiologia" in titles


async def test_a_specialty_the_clinic_lacks_is_not_taken_for_a_similar_one(clinic_db):
    # Two letters apart from "dermatologia": another specialty, not a typo.
    assert await _understood("quero marcar hematologia") is None
