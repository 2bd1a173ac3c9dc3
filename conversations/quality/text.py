"""Text helpers the checks share: sentences and words with their spans, light stemming,
and the facts a reply can state (prices, numbers, dates, URLs, ids, product names)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache

# A sentence ends at . ! ? … (and their Spanish openers do not start one) or a line break.
_SENTENCE = re.compile(r"(?:[^.!?…\n]|[.!?…]+(?=[^\s.!?…]))+(?:[.!?…]+(?=\s|$)|\n|$)")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)

STOPWORDS = frozenset("""
a an the and or but if then so of to in on at by for with from as is are was were be been
being am do does did have has had i you he she it we they me him her us them my your his its
our their this that these those there here what which who whom whose when where why how all
any both each few more most other some such no nor not only own same than too very can will
just should would could may might must shall about into through during before after above
below up down out off over under again further once also please let know get got im ive
youre we're dont cant won't wont it's thats hi hello hey thanks thank sure okay ok yes
you'll we'll i'll it'll they'll you've we've they've i'd you'd we'd there's here's that's
let's isn't aren't doesn't don't didn't can't couldn't wasn't weren't haven't hasn't
el la los las un una unos unas y o pero si de del al a en por para con sin sobre es son
fue ser está están estar he ha han hay que qué como cómo cuando cuándo donde dónde lo le
les se su sus mi mis tu tus te me nos yo tú usted ustedes él ella ellos ellas este esta
estos estas ese esa eso muy más ya no sí hola gracias favor puedo puede pueden
puedes podemos tienes tiene tenemos tengo hacer antes después despues también tambien así
aquí todo toda todos todas cada otro otra mismo misma bien solo sólo siempre nunca ahora
luego hasta desde entre hacia según durante mientras aunque porque pues vez nuestro nuestra
nuestros nuestras tu tuyo
le la les des du de et ou un une est sont être etre avoir ai as avez ont je tu il elle nous
vous ils elles mon ma mes ton ta tes son sa ses notre nos votre vos ce cet cette ces qui que
quoi quel quelle quels quelles pour par sur dans avec sans pas ne plus très tres aussi
bonjour merci oui non
o os as um uma uns umas e ou de do da dos das em no na nos nas por para com sem que é são
ser estar foi eu tu ele ela nós vós eles elas meu minha meus minhas teu tua seu sua nosso
nossa isto isso aquilo este esta qual quais muito mais já sim não olá obrigado obrigada
pode posso podes
""".split())

_SUFFIXES = ("ations", "ation", "ments", "ment", "ings", "ing", "edly", "ies", "ied", "ed",
             "es", "s", "ly", "ción", "ciones", "mente", "ado", "ada", "idos", "idas", "ido",
             "ida", "iendo", "ando", "amos", "emos", "imos", "ar", "er", "ir")


_PLURALS = ("s", "es")
_AGAIN = ("er", "ar", "ir")


def fold(text: str) -> str:
    """Lower case without accents: "Envío" and "envio" are one word."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A crude suffix strip, enough for "refunds"/"refunded"/"refund" to meet."""
    w = fold(word).replace("’", "'")
    stripped = ""
    for suffix in _SUFFIXES:
        if len(w) - len(suffix) >= 3 and w.endswith(suffix):
            w, stripped = w[: -len(suffix)], suffix
            break
    # A plural strips again: "retailers" and "retailer" both become "retail".
    if stripped in _PLURALS and w.endswith(_AGAIN) and len(w) - 2 >= 3:
        w = w[:-2]
    # A final e goes too: "upgrade" and "upgrades" (stripped to "upgrad") meet, as do
    # "noche" and "noches".
    return w[:-1] if len(w) > 4 and w.endswith("e") else w


def sentences(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, sentence) with surrounding whitespace trimmed; empty ones skipped."""
    for m in _SENTENCE.finditer(text):
        raw = m.group(0)
        lead = len(raw) - len(raw.lstrip())
        body = raw.strip()
        if body:
            start = m.start() + lead
            yield start, start + len(body), body


def words(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group(0)) for m in _WORD.finditer(text)]


_ELISION = re.compile(r"^(?:[ldjnmtsc]|qu)['’](?=\w)|['’]s$", re.I)


def content_stems(text: str) -> set[str]:
    """Stems of the words that carry meaning (no stopwords, no one-letter words). An
    elided article or pronoun ("l'adresse", "qu'il") and a possessive ("company's",
    "what's") are dropped first."""
    out = set()
    for _, _, w in words(text):
        w = _ELISION.sub("", w)
        if len(w) > 1 and fold(w) not in STOPWORDS:
            out.add(stem(w))
    return out


# --- facts --------------------------------------------------------------------------------

_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+", re.I)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_PRICE = re.compile(
    r"(?:[$€£¥]\s?\d[\d.,]*|\d[\d.,]*\s?(?:[$€£¥]|(?:usd|eur|gbp|mxn|dollars?|euros?|pesos?)\b))",
    re.I)
_MONTHS = (r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|"
           r"aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|enero|"
           r"febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|noviembre|"
           r"diciembre")
_DATE = re.compile(
    rf"\b(?:\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}[/.]\d{{1,2}}(?:[/.]\d{{2,4}})?|"
    rf"(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?|"
    rf"\d{{1,2}}(?:st|nd|rd|th)?\s+(?:de\s+)?(?:{_MONTHS})(?:\s+(?:de\s+)?\d{{4}})?)\b", re.I)
# An id: a token mixing letters and digits, or # followed by one ("A-1043", "#88412", "X200").
_ID = re.compile(r"(?:#\s?[\w-]*\d[\w-]*|"
                 r"\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*\b)")
# A number joined to a word ("5-year", "3-seater", "100-night") is a number, not an id.
_NUMBER_WORD = re.compile(r"\b\d+(?:[.,]\d+)?-[^\W\d_]{3,}\b")
_PHONE = re.compile(r"(?<![\w+])\+?\d[\d ().-]{6,}\d\b")
_NUMBER = re.compile(r"\b\d+(?:[.,]\d+)*\b")
# Product names: two or more Capitalized words in a row, not at the start of a sentence.
_NAME = re.compile(r"(?<=[a-z0-9,;:] )(?:[A-Z][\w'’-]+)(?: [A-Z][\w'’-]+)+")

FACT_KINDS = ("url", "email", "price", "date", "id", "number", "name")


def _digits(value: str) -> str:
    """A number as digits with one decimal point: "1,299.00" "1.299,00" "1299" → 1299."""
    digits = re.sub(r"[^\d.,]", "", value)
    if not digits:
        return ""
    last = max(digits.rfind("."), digits.rfind(","))
    whole, frac = (digits, "") if last < 0 else (digits[:last], digits[last + 1:])
    if frac and len(frac) == 3 and last >= 0 and whole:  # 1,299 / 1.299: a thousands mark
        whole, frac = whole + frac, ""
    whole = re.sub(r"[.,]", "", whole).lstrip("0") or "0"
    frac = frac.rstrip("0")
    return f"{whole}.{frac}" if frac else whole


def facts(text: str) -> list[dict[str, object]]:
    """The checkable facts of a text: kind, span, text and a normalized value. A span is
    claimed once, by the most specific kind (a price is not also a number)."""
    found: list[dict[str, object]] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, m: re.Match[str], value: str) -> None:
        start, end = m.start(), m.end()
        text_ = m.group(0).rstrip(".,;:")
        end = start + len(text_)
        if not value or any(s < end and start < e for s, e in taken):
            return
        taken.append((start, end))
        found.append({"kind": kind, "start": start, "end": end, "text": text_, "value": value})

    for m in _URL.finditer(text):
        add("url", m, fold(m.group(0)).rstrip(".,;:/").removeprefix("https://")
            .removeprefix("http://").removeprefix("www."))
    for m in _EMAIL.finditer(text):
        add("email", m, fold(m.group(0)))
    for m in _PRICE.finditer(text):
        add("price", m, _digits(m.group(0)))
    for m in _DATE.finditer(text):
        add("date", m, date_value(m.group(0)))
    for m in _PHONE.finditer(text):
        add("number", m, re.sub(r"\D", "", m.group(0)))
    for m in _NUMBER_WORD.finditer(text):
        add("number", m, _digits(m.group(0).split("-")[0]))
    for m in _ID.finditer(text):
        add("id", m, re.sub(r"[^0-9a-z]", "", fold(m.group(0))))
    for m in _NUMBER.finditer(text):
        add("number", m, _digits(m.group(0)))
    for m in _NAME.finditer(text):
        add("name", m, fold(m.group(0)))
    return sorted(found, key=lambda f: f["start"])  # type: ignore[arg-type, return-value]


_MONTH_NUMBER = {name: i for i, names in enumerate((
    ("jan", "january", "enero"), ("feb", "february", "febrero"), ("mar", "march", "marzo"),
    ("apr", "april", "abril"), ("may", "mayo"), ("jun", "june", "junio"),
    ("jul", "july", "julio"), ("aug", "august", "agosto"), ("sep", "sept", "september",
                                                           "septiembre"),
    ("oct", "october", "octubre"), ("nov", "november", "noviembre"),
    ("dec", "december", "diciembre")), start=1) for name in names}


def date_value(text: str) -> str:
    """A date as "month-day" when it names a month by word ("March 3" and "3 de marzo"
    meet), else its digits."""
    t = fold(text)
    for word in re.findall(r"[a-z]+", t):
        if word in _MONTH_NUMBER:
            day = re.search(r"\d{1,2}", t)
            return f"{_MONTH_NUMBER[word]}-{int(day.group(0)) if day else 0}"
    return re.sub(r"\D", "-", t)


def source_values(texts: list[str]) -> set[str]:
    """Every normalized value a fact could match in the sources: their facts, and every
    number and word run in them (a number in a chunk supports a price of that amount)."""
    values: set[str] = set()
    for t in texts:
        for f in facts(t):
            values.add(str(f["value"]))
        for m in _NUMBER.finditer(t):
            values.add(_digits(m.group(0)))
        for m in _PHONE.finditer(t):
            values.add(re.sub(r"\D", "", m.group(0)))
    return values


def source_folded(texts: list[str]) -> str:
    return "\n".join(fold(t) for t in texts)
