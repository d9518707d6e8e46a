"""The words of the relay's log lines: ages with their plural, sex as a word, the sent lines.

Russian counts three ways ("31 год", "33 года", "30 лет") and the rule is not the last digit
alone (11–14 take "лет"). The plural rules come from CLDR through Babel, as do the unit's words
("duration-year"), so no if-chain of ours decides a grammatical form. The few words Babel has no
unit for (sex, "sent") are tables per language.

A run's lines are in Russian for a Russian Faker locale (``ru_RU``: the names are ФИО), and in
English for any other: a line mixing a German age into English words would help nobody.
"""

from __future__ import annotations

from dataclasses import dataclass

from babel import Locale
from babel.units import format_unit

from include.profile_relay.profiles import Sex


@dataclass(frozen=True, slots=True)
class Words:
    male: str
    female: str
    sent: str  # the receiver accepted the profile as new
    duplicate: str  # the receiver had it already: an earlier send's acknowledgement was lost
    # "{sent} of {count} profiles" by the plural category of count, as "из N" takes it.
    total: dict[str, str]


WORDS = {
    "ru": Words(
        male="мужчина",
        female="женщина",
        sent="Отправлено",
        duplicate="Уже доставлено ранее (повтор)",
        # After "из" the noun is genitive: "из 1 профиля", "из 21 профиля", "из 3000 профилей".
        total={
            "one": "Отправлено {sent} из {count} профиля",
            "other": "Отправлено {sent} из {count} профилей",
        },
    ),
    "en": Words(
        male="male",
        female="female",
        sent="Sent",
        duplicate="Already delivered (duplicate)",
        total={"one": "Sent {sent} of {count} profile", "other": "Sent {sent} of {count} profiles"},
    ),
}
DEFAULT_LANGUAGE = "en"


def language(locale: str) -> str:
    """The language of the lines for a Faker locale (``ru_RU`` → ``ru``; no table → English)."""
    spoken = locale.split("_", 1)[0]
    return spoken if spoken in WORDS else DEFAULT_LANGUAGE


def age_text(years: int, locale: str) -> str:
    """``33`` → "33 года" (ru), "33 years" (en): the number with its CLDR plural form."""
    return format_unit(years, "duration-year", locale=language(locale), length="long")


def sex_word(sex: Sex, locale: str) -> str:
    """'M' → "мужчина" / "male", 'F' → "женщина" / "female"."""
    words = WORDS[language(locale)]
    try:
        return {"M": words.male, "F": words.female}[sex]
    except KeyError:
        raise ValueError(f"sex must be 'M' or 'F', not {sex!r}") from None


def sent_line(profile_name: str, sex: Sex, job: str, age: int, outcome: str, locale: str) -> str:
    """The seed's console line for one delivered profile.

    ``Отправлено: Шестаков Ростислав Иосифович, мужчина, Моторист, 33 года``. ``outcome`` is the
    receiver's: "accepted", or "duplicate" when it had the profile already, which the line says.
    """
    words = WORDS[language(locale)]
    verdict = {"accepted": words.sent, "duplicate": words.duplicate}[outcome]
    return f"{verdict}: {profile_name}, {sex_word(sex, locale)}, {job}, {age_text(age, locale)}"


def total_line(sent: int, count: int, locale: str) -> str:
    """``Отправлено 287 из 3000 профилей`` / ``Sent 287 of 3000 profiles``."""
    lang = language(locale)
    form = "one" if Locale.parse(lang).plural_form(count) == "one" else "other"
    return WORDS[lang].total[form].format(sent=sent, count=count)
