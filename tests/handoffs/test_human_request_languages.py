"""What asking for a human looks like in the five languages the scorers support: each
request is found, and the near-misses (talking ABOUT a person, a product called "agent")
are not."""

import pytest

from handoffs.flags import human_request_match

ASKS = [
    ("en", "Can I please speak to a real person?"),
    ("en", "Connect me to a human"),
    ("es", "Quiero hablar con un agente, por favor"),
    ("es", "pásame con alguien de soporte"),
    ("pt", "Quero falar com um atendente"),
    ("pt", "preciso de uma pessoa de verdade, não quero falar com o robô"),
    ("pt", "me passa pra alguém por favor"),
    ("fr", "Je voudrais parler à un conseiller"),
    ("fr", "Est-ce que je peux parler avec une vraie personne ?"),
    ("fr", "pas un robot s'il vous plaît"),
    ("de", "Ich möchte mit einem Menschen sprechen"),
    ("de", "Bitte verbinden Sie mich mit einem Mitarbeiter"),
    ("de", "Ich will einen echten Menschen, keinen Bot"),
]

NOT_ASKS = [
    ("en", "The delivery person left it at the door"),
    ("es", "El agente de aduanas retuvo el paquete"),
    ("pt", "A pessoa que entregou foi muito simpática"),
    ("fr", "La personne au téléphone était gentille, merci"),
    ("de", "Der Mensch an der Kasse war sehr nett"),
]


@pytest.mark.parametrize(("language", "text"), ASKS)
def test_a_request_for_a_human_is_found_in_each_language(language, text):
    assert human_request_match(text), (language, text)


@pytest.mark.parametrize(("language", "text"), NOT_ASKS)
def test_talking_about_a_person_is_not_a_request(language, text):
    assert human_request_match(text) == "", (language, text)
