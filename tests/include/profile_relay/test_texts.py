"""The sent lines read like the seed's console; plurals come from CLDR, never an if-chain of ours."""

from __future__ import annotations

import pytest
from babel import Locale

from include.profile_relay.texts import age_text, language, sent_line, sex_word, total_line

# The word CLDR's Russian plural category takes after a number of years.
RUSSIAN_YEARS = {"one": "год", "few": "года", "many": "лет"}


@pytest.mark.parametrize("years", range(201))
def test_russian_ages_take_the_cldr_plural_form(years: int) -> None:
    assert age_text(years, "ru_RU") == f"{years} {RUSSIAN_YEARS[Locale('ru').plural_form(years)]}"


@pytest.mark.parametrize(
    ("years", "text"),
    [(30, "30 лет"), (31, "31 год"), (33, "33 года"), (11, "11 лет"), (14, "14 лет"), (101, "101 год")],
)
def test_the_seeds_examples(years: int, text: str) -> None:
    assert age_text(years, "ru_RU") == text


@pytest.mark.parametrize(("years", "text"), [(1, "1 year"), (0, "0 years"), (33, "33 years")])
def test_english_ages(years: int, text: str) -> None:
    assert age_text(years, "en_US") == text


def test_sex_is_a_word_in_the_lines_language() -> None:
    assert (sex_word("M", "ru_RU"), sex_word("F", "ru_RU")) == ("мужчина", "женщина")
    assert (sex_word("M", "en_GB"), sex_word("F", "de_DE")) == ("male", "female")
    with pytest.raises(ValueError, match="sex must be 'M' or 'F'"):
        sex_word("X", "ru_RU")


def test_languages_without_a_table_are_written_in_english() -> None:
    assert [language(locale) for locale in ("ru_RU", "en_US", "de_DE", "fil_PH")] == ["ru", "en", "en", "en"]


def test_a_sent_line_reads_like_the_seeds_console() -> None:
    line = sent_line("Шестаков Ростислав Иосифович", "M", "Моторист", 33, "accepted", "ru_RU")
    assert line == "Отправлено: Шестаков Ростислав Иосифович, мужчина, Моторист, 33 года"
    assert sent_line("John Smith", "M", "Engineer", 33, "accepted", "en_US") == (
        "Sent: John Smith, male, Engineer, 33 years"
    )


def test_a_duplicate_acknowledgement_says_so() -> None:
    line = sent_line("Иванова Анна Петровна", "F", "Врач", 31, "duplicate", "ru_RU")
    assert line == "Уже доставлено ранее (повтор): Иванова Анна Петровна, женщина, Врач, 31 год"
    assert sent_line("Ann Lee", "F", "Nurse", 40, "duplicate", "en_US").startswith("Already delivered")


@pytest.mark.parametrize(
    ("sent", "count", "line"),
    [
        (287, 3000, "Отправлено 287 из 3000 профилей"),
        (1, 21, "Отправлено 1 из 21 профиля"),
        (0, 1, "Отправлено 0 из 1 профиля"),
        (3, 12, "Отправлено 3 из 12 профилей"),
    ],
)
def test_the_final_count_line(sent: int, count: int, line: str) -> None:
    assert total_line(sent, count, "ru_RU") == line


def test_the_final_count_line_in_english() -> None:
    assert (total_line(1, 1, "en_US"), total_line(2, 5, "en_US")) == (
        "Sent 1 of 1 profile",
        "Sent 2 of 5 profiles",
    )
