"""Error details in the handshake's language, through the real router and consumer."""

from __future__ import annotations

import pytest

from chat import consumers

pytestmark = pytest.mark.django_db(transaction=True)


def accept_language(value: str) -> list[tuple[bytes, bytes]]:
    return [(b"accept-language", value.encode())]


@pytest.mark.parametrize("header", ["pt-BR", "pt", "pt-PT,en;q=0.5", "de, pt;q=0.3"])
async def test_portuguese_handshakes_get_portuguese_details_with_the_same_codes(connect, header):
    seiya = await connect(headers=accept_language("pt-BR"))
    await seiya.join("Seiya")
    other = await connect(headers=accept_language(header))
    error = await other.error({"type": "join", "name": "seiya"})
    assert error["code"] == "name_taken"
    assert error["detail"] == (
        "Já tem alguém nesta sala chamado seiya, ou com um nome que parece igual; "
        "escolha outro nome, por favor."
    )
    error = await seiya.error({"type": "message", "message": " "})
    assert (error["code"], error["detail"]) == (
        "message_empty",
        "Não é possível enviar uma mensagem vazia.",
    )


@pytest.mark.parametrize(
    "headers",
    [
        [],
        accept_language("fr-FR, de;q=0.8"),
        accept_language("*"),
        accept_language("pt;q=nonsense;;,,=,"),
        accept_language("pt-" + "x" * 10_000),
        accept_language(",".join(["fr"] * 2000) + ",pt"),
        [(b"accept-language", "pt".encode("utf-16"))],
    ],
    ids=["none", "unsupported", "star", "malformed", "one-huge-tag", "huge-list", "not-ascii"],
)
async def test_other_handshakes_get_english(connect, headers):
    seiya = await connect(headers=headers)
    error = await seiya.error({"type": "typing"})
    assert (error["code"], error["detail"]) == (
        "not_joined",
        "Join the room before sending typing events.",
    )


async def test_two_connections_keep_their_own_languages(connect):
    ana = await connect(headers=accept_language("pt-BR"))
    bob = await connect(headers=accept_language("en-GB"))
    for _ in range(2):
        assert (await ana.error("{"))["detail"] == "Esse frame não é um JSON válido."
        assert (await bob.error("{"))["detail"] == "That frame is not valid JSON."


async def test_the_relay_path_never_chooses_a_language(connect, monkeypatch):
    """Only an error reads Accept-Language and activates a translation."""
    chosen = []
    real = consumers.scope_language
    monkeypatch.setattr(
        consumers, "scope_language", lambda headers: chosen.append(1) or real(headers)
    )
    shiryu = await connect(headers=accept_language("pt-BR"))
    seiya = await connect(headers=accept_language("pt-BR"))
    await shiryu.join("Shiryu")
    await seiya.join("Seiya")
    await shiryu.receive_type("presence")
    await seiya.send({"type": "typing"})
    await shiryu.receive_type("typing")
    for number in range(3):
        await seiya.send({"type": "message", "message": f"Olá {number}"})
        await shiryu.receive_type("message")
    assert chosen == []
    await seiya.error({"type": "join", "name": "Seiya"})
    await seiya.error({"type": "join", "name": "Seiya"})
    assert chosen == [1], "the language is read once, at the first error"
