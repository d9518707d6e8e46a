"""Every word the report and its emails show, in English and Russian (the original had both).

The language is chosen per run (the DAG's ``language`` param) or by the operator (the
``learning_platform_report`` Variable); all destinations render from one ``Texts``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum


class Language(StrEnum):
    EN = "en"
    RU = "ru"


@dataclass(frozen=True, slots=True)
class Texts:
    language: Language
    # table titles
    report_title: str
    history_title: str
    summary_title: str
    figures_title: str
    quarantine_title: str
    courses_title: str
    checks_title: str
    chart_title: str
    # column and row labels
    date: str
    covered_interval: str
    metric: str
    value: str
    unique_users: str
    runs: str
    submits: str
    successful_submits: str
    success_share: str
    avg_submits_per_user: str
    avg_successful_submits_per_user: str
    fetched: str
    boundary_copies: str
    loaded: str
    flagged: str
    quarantined: str
    quality: str
    computed_at: str
    reason: str
    records: str
    course: str
    unknown_course: str
    check: str
    result: str
    observed: str
    expected: str
    quality_passed: str
    quality_failed: str
    quality_not_checked: str
    # sentences of the email and the report
    subject: str  # {day}
    subject_unreliable: str  # {day}
    subject_not_updated: str  # {day}
    subject_test_mode: str  # {subject}
    no_data: str
    partial_day: str  # {interval}
    unreliable: str  # {checks}
    not_checked: str
    published_to_sheets: str  # {url}
    written_locally: str  # {path}
    report_not_updated: str
    reasons_may_overlap: str
    reasons: Mapping[str, str]
    checks: Mapping[str, str]

    def reason_label(self, reason: str) -> str:
        return self.reasons.get(reason, reason)

    def check_label(self, name: str) -> str:
        return self.checks.get(name, name)

    def interval(self, start: datetime, end: datetime) -> str:
        return f"{_utc(start)} – {_utc(end)} UTC"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


ENGLISH = Texts(
    language=Language.EN,
    report_title="Learning platform: daily report",
    history_title="Daily history",
    summary_title="Daily report",
    figures_title="Figures",
    quarantine_title="Quarantined records by reason",
    courses_title="By course",
    checks_title="Data-quality checks",
    chart_title="Last 30 days",
    date="Date",
    covered_interval="Covered interval",
    metric="Metric",
    value="Value",
    unique_users="Unique users",
    runs="Runs",
    submits="Submits",
    successful_submits="Successful submits",
    success_share="Share of successful submits",
    avg_submits_per_user="Submits per user",
    avg_successful_submits_per_user="Successful submits per user",
    fetched="Records fetched",
    boundary_copies="Boundary copies (judged with the next window)",
    loaded="Attempts loaded",
    flagged="Loaded with flagged defects",
    quarantined="Records quarantined",
    quality="Data quality",
    computed_at="Computed at (UTC)",
    reason="Reason",
    records="Records",
    course="Course",
    unknown_course="(course unknown)",
    check="Check",
    result="Result",
    observed="Observed",
    expected="Expected",
    quality_passed="passed",
    quality_failed="FAILED",
    quality_not_checked="not checked",
    subject="Learning platform report for {day}",
    subject_unreliable="Learning platform report for {day}: UNRELIABLE figures",
    subject_not_updated="Learning platform report for {day}: report NOT updated",
    subject_test_mode="[TEST MODE] {subject}",
    no_data="No attempts were recorded for this day: there are no figures to report.",
    partial_day="These figures cover only {interval} (test mode), not the whole day.",
    unreliable="The figures are UNRELIABLE: data-quality checks failed: {checks}.",
    not_checked="The figures have not passed the data-quality checks: the checks did not run.",
    published_to_sheets="The report is updated in Google Sheets: {url}",
    written_locally="No Google credentials are configured: the report was NOT published to "
    "Google Sheets, it was written to a local file: {path}",
    report_not_updated="The report was NOT updated: publishing it failed. The figures below come "
    "straight from the warehouse.",
    reasons_may_overlap="A record with several defects counts under each of its reasons.",
    reasons={
        "unreadable_json": "JSON too large or too deeply nested to read",
        "not_an_object": "Not a JSON object",
        "user_id_missing": "User id missing",
        "user_id_not_string": "User id not a string",
        "user_id_wrong_length": "User id not 32 characters",
        "user_id_bad_characters": "User id not alphanumeric",
        "attempt_type_invalid": "Unknown attempt type",
        "is_correct_on_run": "Correctness set on a run",
        "is_correct_missing_on_submit": "Correctness missing on a submit",
        "is_correct_invalid": "Correctness not 0/1",
        "created_at_missing": "Time missing",
        "created_at_invalid": "Time malformed",
        "created_at_outside_window": "Time outside the requested window",
    },
    checks={
        "attempts_present": "Attempts loaded unless the source was empty",
        "rejected_share": "Share of rejected records under the threshold",
        "no_duplicate_attempts": "No attempt stored twice",
        "stats_match_warehouse": "Statistics match the warehouse",
        "volume_normal": "Number of records in line with the previous days",
    },
)

RUSSIAN = Texts(
    language=Language.RU,
    report_title="Обучающая платформа: ежедневный отчёт",
    history_title="История по дням",
    summary_title="Отчёт за день",
    figures_title="Показатели",
    quarantine_title="Записи в карантине по причинам",
    courses_title="По курсам",
    checks_title="Проверки качества данных",
    chart_title="Последние 30 дней",
    date="Дата",
    covered_interval="Обработанный интервал",
    metric="Показатель",
    value="Значение",
    unique_users="Уникальные пользователи",
    runs="Запуски кода",
    submits="Отправки решений",
    successful_submits="Успешные отправки",
    success_share="Доля успешных отправок",
    avg_submits_per_user="Отправок на пользователя",
    avg_successful_submits_per_user="Успешных отправок на пользователя",
    fetched="Получено записей",
    boundary_copies="Копии на границе окна (учтены в следующем окне)",
    loaded="Загружено попыток",
    flagged="Загружено с пометками о дефектах",
    quarantined="Записей в карантине",
    quality="Качество данных",
    computed_at="Рассчитано (UTC)",
    reason="Причина",
    records="Записей",
    course="Курс",
    unknown_course="(курс не указан)",
    check="Проверка",
    result="Результат",
    observed="Фактически",
    expected="Ожидалось",
    quality_passed="пройдена",
    quality_failed="НЕ ПРОЙДЕНА",
    quality_not_checked="не проверялось",
    subject="Отчёт обучающей платформы за {day}",
    subject_unreliable="Отчёт обучающей платформы за {day}: показатели НЕНАДЁЖНЫ",
    subject_not_updated="Отчёт обучающей платформы за {day}: отчёт НЕ обновлён",
    subject_test_mode="[ТЕСТОВЫЙ РЕЖИМ] {subject}",
    no_data="За этот день попыток не зафиксировано: показателей нет.",
    partial_day="Показатели охватывают только {interval} (тестовый режим), а не весь день.",
    unreliable="Показатели НЕНАДЁЖНЫ: не пройдены проверки качества данных: {checks}.",
    not_checked="Показатели не прошли проверки качества данных: проверки не выполнялись.",
    published_to_sheets="Отчёт обновлён в Google Таблицах: {url}",
    written_locally="Учётные данные Google не настроены: отчёт НЕ опубликован в Google Таблицах, "
    "он записан в локальный файл: {path}",
    report_not_updated="Отчёт НЕ обновлён: опубликовать его не удалось. Показатели ниже взяты "
    "непосредственно из хранилища.",
    reasons_may_overlap="Запись с несколькими дефектами учтена по каждой своей причине.",
    reasons={
        "unreadable_json": "JSON слишком большой или слишком глубоко вложенный для чтения",
        "not_an_object": "Не JSON-объект",
        "user_id_missing": "Нет идентификатора пользователя",
        "user_id_not_string": "Идентификатор пользователя не строка",
        "user_id_wrong_length": "Идентификатор пользователя не из 32 символов",
        "user_id_bad_characters": "Недопустимые символы в идентификаторе",
        "attempt_type_invalid": "Неизвестный тип попытки",
        "is_correct_on_run": "Оценка у запуска кода",
        "is_correct_missing_on_submit": "Нет оценки у отправки решения",
        "is_correct_invalid": "Оценка не 0/1",
        "created_at_missing": "Нет времени попытки",
        "created_at_invalid": "Неверный формат времени",
        "created_at_outside_window": "Время вне запрошенного окна",
    },
    checks={
        "attempts_present": "Попытки загружены, если источник не пуст",
        "rejected_share": "Доля отклонённых записей ниже порога",
        "no_duplicate_attempts": "Ни одна попытка не сохранена дважды",
        "stats_match_warehouse": "Статистика совпадает с хранилищем",
        "volume_normal": "Число записей соответствует предыдущим дням",
    },
)

TEXTS = {Language.EN: ENGLISH, Language.RU: RUSSIAN}


def texts_for(language: str) -> Texts:
    try:
        return TEXTS[Language(language.lower())]
    except ValueError:
        choices = ", ".join(TEXTS)
        raise ValueError(f"unknown report language {language!r}: choose one of {choices}") from None
