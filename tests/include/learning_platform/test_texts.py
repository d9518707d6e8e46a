"""The report speaks English and Russian, with a label for every reason and check it can show."""

from __future__ import annotations

from dataclasses import fields

import pytest

from include.learning_platform.quality import QualityFacts, evaluate
from include.learning_platform.rules import Reason
from include.learning_platform.texts import ENGLISH, RUSSIAN, Language, texts_for


def check_names() -> set[str]:
    figures = dict.fromkeys(
        ("loaded", "quarantined", "unique_users", "runs", "submits", "successful_submits"), 0
    )
    return {
        check.name for check in evaluate(QualityFacts(0, figures, dict(figures), 0), max_rejected_share=0.05)
    }


@pytest.mark.parametrize("texts", [ENGLISH, RUSSIAN], ids=["en", "ru"])
def test_every_reason_and_check_has_a_label(texts) -> None:
    assert set(texts.reasons) == {reason.value for reason in Reason}
    assert set(texts.checks) == check_names()


def test_the_languages_differ_in_every_sentence() -> None:
    for field in fields(ENGLISH):
        if field.name not in ("language", "reasons", "checks"):
            assert getattr(ENGLISH, field.name) != getattr(RUSSIAN, field.name), field.name


def test_a_language_is_chosen_by_code() -> None:
    assert texts_for("ru") is RUSSIAN
    assert texts_for("EN") is ENGLISH
    assert texts_for(Language.RU) is RUSSIAN
    with pytest.raises(ValueError, match="choose one of en, ru"):
        texts_for("de")


def test_unknown_names_fall_back_to_themselves() -> None:
    assert ENGLISH.reason_label("new_reason") == "new_reason"
    assert RUSSIAN.check_label("new_check") == "new_check"
