"""How our messages look on WhatsApp: native buttons and lists within Meta's limits."""

from channels.whatsapp import message_bodies
from core.catalog import t


def options(n: int) -> list[dict[str, str]]:
    return [
        {"title": f"Opção número {i} com título longo", "payload": f"/opcao_{i}"}
        for i in range(1, n + 1)
    ]


def test_a_plain_text_is_one_text_message():
    assert message_bodies("Olá!", []) == [
        {"type": "text", "text": {"preview_url": False, "body": "Olá!"}}
    ]


def test_up_to_three_options_are_reply_buttons_with_titles_cut_to_20():
    [body] = message_bodies("Escolha:", options(3))

    interactive = body["interactive"]
    assert interactive["type"] == "button"
    assert interactive["body"] == {"text": "Escolha:"}
    assert [b["reply"] for b in interactive["action"]["buttons"]] == [
        {"id": f"/opcao_{i}", "title": f"Opção número {i} com t"} for i in (1, 2, 3)
    ]


def test_four_to_ten_options_are_a_list():
    [body] = message_bodies("Escolha a especialidade:", options(10))

    interactive = body["interactive"]
    assert interactive["type"] == "list"
    assert interactive["action"]["button"] == t("channel.options_button")
    rows = interactive["action"]["sections"][0]["rows"]
    assert len(rows) == 10
    assert all(len(row["title"]) <= 24 for row in rows)


def test_more_than_ten_options_are_numbered_text():
    bodies = message_bodies("Escolha:", options(11))

    assert [b["type"] for b in bodies] == ["text"]
    assert "11. Opção número 11" in bodies[0]["text"]["body"]


def test_a_long_text_with_options_ends_with_the_buttons_under_1024_characters():
    text = "Informação importante. " * 250  # about 5700 characters

    bodies = message_bodies(text, options(2))

    assert [b["type"] for b in bodies[:-1]] == ["text"] * (len(bodies) - 1)
    assert all(len(b["text"]["body"]) <= 4096 for b in bodies[:-1])
    assert len(bodies[-1]["interactive"]["body"]["text"]) <= 1024
    sent = (
        " ".join(b["text"]["body"] for b in bodies[:-1])
        + " "
        + bodies[-1]["interactive"]["body"]["text"]
    )
    assert sent.split() == text.split()
