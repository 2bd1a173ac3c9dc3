"""Politeness strategies and register markers in Spanish, Portuguese, French and German:
the same strategies as the English lists in scoring/tone.py and scoring/scorers.py
(Danescu-Niculescu-Mizil et al. 2013 for politeness; formal words vs slang for formality),
written by hand for how support replies and customers use each language. Register also
counts the T-V distinction: formal "usted", "o senhor", "vous", "Sie" vs "tú", "tu", "du".
Phrase lists, not models: see docs/scoring.md (Languages) for their figures.
"""

from __future__ import annotations

import re

from .phrases import phrase_pattern as _phrase_pattern

Patterns = dict[str, re.Pattern[str] | None]

_SHOUTING = re.compile(r"!{2,}|\b[^\W\d_a-zäöüßéèêëàâçãõáíóúñ]{4,}\b")


def _p(*phrases: str) -> re.Pattern[str] | None:
    return _phrase_pattern(list(phrases))


POLITE: dict[str, Patterns] = {
    "es": {
        "gratitude": _p("gracias", "muchas gracias", "le agradecemos", "agradecemos",
                        "agradezco", "te agradezco", "le agradezco"),
        "apology": _p("lo siento", "lo sentimos", "disculpe", "disculpa", "disculpas",
                      "perdón", "perdon", "perdone", "lamentamos"),
        "please": _p("por favor", "tenga la amabilidad", "sería tan amable"),
        "greeting": _p("hola", "buenos días", "buenos dias", "buenas tardes",
                       "buenas noches", "estimado", "estimada", "bienvenido", "bienvenida"),
        "deference": _p("tiene razón", "tienes razón", "buena pregunta",
                        "con gusto", "encantado de ayudar", "encantada de ayudar",
                        "será un placer", "es un placer"),
        "hedge": _p("podría", "podrías", "quizás", "quizá", "tal vez", "si es posible",
                    "cuando pueda", "le importaría"),
        "empathy": _p("entiendo", "entendemos", "comprendo", "comprendemos",
                      "me imagino", "lamento escuchar", "siento mucho", "qué frustrante",
                      "es comprensible"),
    },
    "pt": {
        "gratitude": _p("obrigado", "obrigada", "muito obrigado", "muito obrigada",
                        "agradecemos", "agradeço", "agradeco"),
        "apology": _p("desculpe", "desculpa", "desculpas", "perdão", "perdao",
                      "lamentamos", "sinto muito"),
        "please": _p("por favor", "por gentileza", "gentileza", "poderia por favor"),
        "greeting": _p("olá", "ola", "oi", "bom dia", "boa tarde", "boa noite",
                       "prezado", "prezada", "bem-vindo", "bem-vinda"),
        "deference": _p("tem razão", "tem toda a razão", "boa pergunta", "com prazer",
                        "será um prazer", "é um prazer", "fico feliz em ajudar"),
        "hedge": _p("poderia", "talvez", "se possível", "se possivel", "quando puder",
                    "se não for incômodo"),
        "empathy": _p("entendo", "entendemos", "compreendo", "compreendemos",
                      "imagino", "lamento", "sinto muito pelo", "é compreensível"),
    },
    "fr": {
        "gratitude": _p("merci", "merci beaucoup", "nous vous remercions", "je vous remercie",
                        "remercie", "remercions"),
        "apology": _p("désolé", "désolée", "desole", "excusez", "excuses", "pardon",
                      "nous regrettons", "toutes nos excuses"),
        "please": _p("s'il vous plaît", "s'il vous plait", "svp", "s'il te plaît",
                     "merci de", "veuillez"),
        "greeting": _p("bonjour", "bonsoir", "salut", "cher", "chère", "madame", "monsieur",
                       "bienvenue"),
        "deference": _p("vous avez raison", "bonne question", "avec plaisir",
                        "ravi de vous aider", "ravie de vous aider", "c'est un plaisir"),
        "hedge": _p("pourriez-vous", "pourriez vous", "pourrais-tu", "peut-être",
                    "peut etre", "si possible", "quand vous pourrez", "auriez-vous"),
        "empathy": _p("je comprends", "nous comprenons", "je vous comprends",
                      "j'imagine", "navré", "navrée", "c'est frustrant", "c'est compréhensible"),
    },
    "de": {
        "gratitude": _p("danke", "vielen dank", "danke schön", "dankeschön", "wir danken",
                        "herzlichen dank", "besten dank"),
        "apology": _p("entschuldigung", "entschuldigen", "tut mir leid", "tut uns leid",
                      "bedauern", "verzeihung", "sorry"),
        "please": _p("bitte", "freundlicherweise"),
        "greeting": _p("hallo", "guten tag", "guten morgen", "guten abend", "liebe",
                       "lieber", "sehr geehrte", "sehr geehrter", "willkommen", "moin",
                       "grüß gott"),
        "deference": _p("sie haben recht", "gute frage", "gerne helfen", "helfen gerne",
                        "gern geschehen", "sehr gerne"),
        "hedge": _p("könnten sie", "würden sie", "vielleicht", "eventuell", "wenn möglich",
                    "falls möglich", "wäre es möglich"),
        "empathy": _p("ich verstehe", "wir verstehen", "verstehe ich", "kann ich verstehen",
                      "ich kann mir vorstellen", "das ist ärgerlich", "nachvollziehen",
                      "verständlich"),
    },
}

IMPOLITE: dict[str, Patterns] = {
    "es": {
        "direct_start": re.compile(r"^\s*(?:mire|oiga|bueno|pues)\b[ ,]", re.IGNORECASE),
        "blame": _p("debió", "debería haber", "tiene que", "usted no", "es su culpa",
                    "como ya le dije", "como ya dijimos", "obviamente"),
        "dismissive": _p("cálmese", "calmese", "no es nuestro problema",
                         "no podemos hacer nada", "no hay nada que hacer", "lea las"),
        "shouting": _SHOUTING,
    },
    "pt": {
        "direct_start": re.compile(r"^\s*(?:olha|veja|bom|então|entao)\b[ ,]", re.IGNORECASE),
        "blame": _p("deveria ter", "você tem que", "voce tem que", "a culpa é sua",
                    "como já disse", "como ja disse", "obviamente"),
        "dismissive": _p("acalme-se", "se acalme", "não é problema nosso",
                         "não podemos fazer nada", "nao podemos fazer nada", "leia as"),
        "shouting": _SHOUTING,
    },
    "fr": {
        "direct_start": re.compile(r"^\s*(?:écoutez|ecoutez|bon|alors|bref)\b[ ,]",
                                   re.IGNORECASE),
        "blame": _p("vous auriez dû", "vous devez", "c'est votre faute", "comme déjà dit",
                    "comme je l'ai dit", "évidemment"),
        "dismissive": _p("calmez-vous", "ce n'est pas notre problème",
                         "nous ne pouvons rien faire", "on ne peut rien faire", "lisez les"),
        "shouting": _SHOUTING,
    },
    "de": {
        "direct_start": re.compile(r"^\s*(?:also|hören sie|schauen sie|na ja)\b[ ,]",
                                   re.IGNORECASE),
        "blame": _p("sie hätten", "sie müssen", "ihre schuld", "wie bereits gesagt",
                    "wie schon gesagt", "offensichtlich"),
        "dismissive": _p("beruhigen sie sich", "nicht unser problem",
                         "da können wir nichts machen", "können wir nichts tun", "lesen sie die"),
        "shouting": _SHOUTING,
    },
}

# Register: formal words and the formal address vs slang and the familiar address.
FORMAL: dict[str, re.Pattern[str] | None] = {
    "es": _p("usted", "ustedes", "le", "atentamente", "estimado", "estimada", "cordialmente",
             "saludos cordiales", "le informamos", "no dude en", "quedamos a su disposición",
             "por favor", "sin embargo", "por lo tanto", "asimismo", "disculpe"),
    "pt": _p("o senhor", "a senhora", "atenciosamente", "prezado", "prezada",
             "cordialmente", "informamos", "não hesite", "ficamos à disposição",
             "por gentileza", "no entanto", "portanto", "além disso", "solicitamos"),
    "fr": _p("vous", "votre", "vos", "cordialement", "madame", "monsieur",
             "veuillez", "nous vous informons", "n'hésitez pas", "je vous prie",
             "toutefois", "par conséquent", "en outre", "salutations distinguées"),
    "de": re.compile(
        r"(?<!\w)(?:Sie|Ihnen|Ihre[mnrs]?|Ihr)(?!\w)|(?i:(?<!\w)(?:sehr geehrte[rn]?|"
        r"mit freundlichen grüßen|freundliche grüße|hochachtungsvoll|bitte beachten|"
        r"zögern sie nicht|jedoch|daher|darüber hinaus|gegebenenfalls|bezüglich)(?!\w))"
    ),
}
INFORMAL: dict[str, re.Pattern[str] | None] = {
    "es": _p("tú", "te", "ti", "contigo", "tu", "vos", "oye", "jaja", "jajaja", "porfa",
             "xfa", "q", "tmb", "ok", "vale", "chido", "genial", "guay", "bro", "tío"),
    "pt": _p("tu", "te", "ti", "contigo", "kkk", "kkkk", "rs", "haha", "vc", "vcs", "blz",
             "beleza", "valeu", "pra", "tá", "tô", "né", "ok", "oi", "cara", "mano"),
    "fr": _p("tu", "te", "toi", "ton", "ta", "tes", "salut", "coucou", "mdr", "lol", "stp",
             "ouais", "bisous", "ok", "super", "cool", "t'inquiète", "pas de souci"),
    "de": re.compile(
        r"(?i:(?<!\w)(?:du|dich|dir|dein|deine[mnrs]?|hey|hi|moin|lol|ok|okay|cool|"
        r"super|tschüss|ciao|hdl|lg|vg|kein ding|passt)(?!\w))"
    ),
}
