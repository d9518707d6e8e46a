"""The report email: MIME structure, subject, sentences, warnings and tables, escaped, in both languages."""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from include.learning_platform.publication import Destination, Publication
from include.learning_platform.report_email import build_report_email
from include.learning_platform.report_model import DailyReport, QualityCheck
from include.learning_platform.texts import ENGLISH, RUSSIAN, Texts
from tests.include.learning_platform.reports import FAILED, PASSED, build_report, figures

SENDER = "reports@example.org"
RECIPIENTS = ("analyst@example.org", "head@example.org")
CHART = b"\x89PNG\r\n\x1a\n" + b"not really a chart, the builder does not look inside"
SHEET_URL = "https://docs.google.com/spreadsheets/d/1AbC/edit?gid=0&x=<y>"
SHEETS = Publication(Destination.SHEETS, SHEET_URL)
LOCAL = Publication(Destination.LOCAL_FILE, "/opt/airflow/reports/learning_platform_2026-11-22.html")
HOSTILE_COURSE = '<script>alert("x")</script>'


# Big enough to show the thousands separator.
BIG = figures(users=40, runs=300, submits=12345, successful=6706)


def sample_report(*, loaded: bool = True, courses: tuple | None = None, **options) -> DailyReport:
    day_figures = BIG if loaded else figures(0, 0, 0, 0)
    courses = (("course-v1:Org+Python+2026", BIG),) if courses is None else courses
    return build_report(day_figures=day_figures, courses=courses, **options)


def build(
    report: DailyReport | None = None,
    texts: Texts = ENGLISH,
    *,
    publication: Publication | None = SHEETS,
    sender: str = SENDER,
    chart: bytes = CHART,
) -> EmailMessage:
    return build_report_email(
        report or sample_report(),
        texts,
        publication=publication,
        sender=sender,
        recipients=RECIPIENTS,
        chart_png=chart,
    )


def parts(message: EmailMessage) -> tuple[str, str]:
    """The plain text and the HTML, decoded."""
    plain = message.get_body(preferencelist=("plain",))
    page = message.get_body(preferencelist=("html",))
    assert plain is not None
    assert page is not None
    return plain.get_content(), page.get_content()


def test_the_message_is_text_with_an_html_alternative_that_holds_the_chart_inline() -> None:
    message = build()

    assert message.get_content_type() == "multipart/alternative"
    plain, related = message.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    page, image = related.get_payload()
    assert page.get_content_type() == "text/html"
    assert image.get_content_type() == "image/png"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == CHART
    src = re.search(r'<img src="cid:([^"]+)"', page.get_content())
    assert src is not None
    assert f"<{src.group(1)}>" == image["Content-ID"]


def test_the_message_survives_the_wire_unchanged() -> None:
    message = build(texts=RUSSIAN)

    parsed = BytesParser(policy=policy.default).parsebytes(message.as_bytes())

    assert parsed["Subject"] == message["Subject"]
    assert parts(parsed) == parts(message)
    assert [part.get_content_type() for part in parsed.walk()] == [
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
    ]
    assert parsed.get_payload()[1].get_payload()[1].get_content() == CHART


def test_the_headers_name_sender_recipients_and_a_message_id_of_the_senders_domain() -> None:
    message = build()

    assert message["From"] == SENDER
    assert message["To"] == ", ".join(RECIPIENTS)
    assert re.fullmatch(r"<[^<>@]+@example\.org>", message["Message-ID"])
    assert build()["Message-ID"] != message["Message-ID"]


def test_without_a_sender_the_connections_from_address_is_left_to_fill_in() -> None:
    message = build(sender="")

    assert message["From"] is None
    assert message["Message-ID"].endswith("@localhost>")


@pytest.mark.parametrize(
    ("publication", "checks", "subject"),
    [
        (SHEETS, PASSED, "Learning platform report for 2026-11-22"),
        (LOCAL, PASSED, "Learning platform report for 2026-11-22"),
        (SHEETS, FAILED, "Learning platform report for 2026-11-22: UNRELIABLE figures"),
        (SHEETS, (), "Learning platform report for 2026-11-22: UNRELIABLE figures"),
        (None, PASSED, "Learning platform report for 2026-11-22: report NOT updated"),
        (None, FAILED, "Learning platform report for 2026-11-22: report NOT updated"),
    ],
)
def test_the_subject_says_whether_the_report_was_updated_and_reliable(
    publication: Publication | None, checks: tuple[QualityCheck, ...], subject: str
) -> None:
    assert build(sample_report(checks=checks), publication=publication)["Subject"] == subject


def test_a_published_report_links_to_the_sheet() -> None:
    plain, page = parts(build(publication=SHEETS))

    assert f"The report is updated in Google Sheets: {SHEET_URL}" in plain
    escaped = "https://docs.google.com/spreadsheets/d/1AbC/edit?gid=0&amp;x=&lt;y&gt;"
    assert f'<a href="{escaped}">{escaped}</a>' in page


def test_a_location_that_is_not_a_web_address_is_not_made_a_link() -> None:
    _, page = parts(build(publication=Publication(Destination.SHEETS, "javascript:alert(1)")))

    assert "<a " not in page
    assert "javascript:alert(1)" in page


def test_a_report_written_locally_gives_its_path() -> None:
    plain, page = parts(build(publication=LOCAL))

    assert ENGLISH.written_locally.format(path=LOCAL.location) in plain
    assert f"<code>{LOCAL.location}</code>" in page


def test_a_report_that_was_not_updated_says_so_before_the_figures() -> None:
    plain, page = parts(build(publication=None))

    assert ENGLISH.report_not_updated in plain
    assert plain.index(ENGLISH.report_not_updated) < plain.index(ENGLISH.figures_title)
    assert ENGLISH.report_not_updated in page
    assert "Google Sheets:" not in plain


def test_the_content_comes_in_order_title_publication_tables_chart() -> None:
    plain, page = parts(build())

    marks = [
        "Learning platform: daily report — 2026-11-22",
        "The report is updated in Google Sheets",
        ENGLISH.summary_title,
        ENGLISH.figures_title,
        ENGLISH.quarantine_title,
        ENGLISH.reasons_may_overlap,
        ENGLISH.courses_title,
        ENGLISH.checks_title,
    ]
    assert [plain.index(mark) for mark in marks] == sorted(plain.index(mark) for mark in marks)
    assert [page.index(mark) for mark in marks] == sorted(page.index(mark) for mark in marks)
    assert page.index(ENGLISH.checks_title) < page.index("<img ")


def test_the_tables_hold_the_days_figures() -> None:
    plain, page = parts(build())

    assert re.search(r"Submits\s+12,345", plain)
    assert re.search(r"Share of successful submits\s+54\.32%", plain)
    assert "User id missing" in plain
    assert "course-v1:Org+Python+2026" in plain
    assert "Share of successful submits per user" not in plain
    assert ">12,345</td>" in page
    assert ">54.32%</td>" in page
    assert "Share of rejected records under the threshold" in page


def test_a_good_day_has_no_warnings() -> None:
    plain, _ = parts(build())

    for warning in ("UNRELIABLE", "not passed the data-quality checks", "No attempts", "test mode"):
        assert warning not in plain


def test_an_unreliable_report_lists_the_failed_checks_by_label() -> None:
    plain, page = parts(build(sample_report(checks=FAILED)))

    warning = ENGLISH.unreliable.format(checks="Share of rejected records under the threshold")
    assert warning in plain
    assert warning in page


def test_a_report_whose_checks_did_not_run_says_so() -> None:
    plain, page = parts(build(sample_report(checks=())))

    assert ENGLISH.not_checked in plain
    assert ENGLISH.not_checked in page
    assert "UNRELIABLE: data-quality checks failed" not in plain


def test_a_day_without_data_says_there_are_no_figures() -> None:
    plain, page = parts(build(sample_report(loaded=0)))

    assert ENGLISH.no_data in plain
    assert ENGLISH.no_data in page
    assert re.search(r"Share of successful submits\s+—", plain)
    assert ENGLISH.reasons_may_overlap not in plain, "no reasons, no note about them"


def test_a_partial_day_gives_the_interval_it_covers() -> None:
    plain, page = parts(build(sample_report(hours=2)))

    warning = ENGLISH.partial_day.format(interval="2026-11-22 00:00 – 2026-11-22 02:00 UTC")
    assert warning in plain
    assert warning in page


def test_a_russian_report_is_russian_throughout() -> None:
    message = build(sample_report(checks=FAILED), RUSSIAN, publication=LOCAL)
    plain, page = parts(message)

    assert message["Subject"] == "Отчёт обучающей платформы за 2026-11-22: показатели НЕНАДЁЖНЫ"
    assert "Обучающая платформа: ежедневный отчёт — 2026-11-22" in plain
    assert RUSSIAN.written_locally.format(path=LOCAL.location) in plain
    assert RUSSIAN.unreliable.format(checks="Доля отклонённых записей ниже порога") in plain
    assert re.search("Отправки решений\\s+12\u00a0345", plain)
    assert re.search("Доля успешных отправок\\s+54,32\u00a0%", plain)
    assert '<html lang="ru">' in page
    assert "12\u00a0345</td>" in page
    assert "Submits" not in plain


def test_hostile_data_is_escaped_in_the_html() -> None:
    report = sample_report(
        courses=((HOSTILE_COURSE, BIG),),
        checks=(QualityCheck("<img src=x onerror=alert(1)>", False, "<b>1</b>", "&"),),
    )

    plain, page = parts(build(report))

    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<img src=x" not in page
    assert "<b>1</b>" not in page
    assert len(re.findall(r"<img ", page)) == 1, "only the chart"
    assert HOSTILE_COURSE in plain, "the plain text shows data as it is"


def test_without_a_chart_the_html_is_a_plain_alternative() -> None:
    message = build(chart=b"")

    assert [part.get_content_type() for part in message.walk()] == [
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]
    assert "<img" not in parts(message)[1]


def test_a_report_email_without_recipients_is_refused() -> None:
    with pytest.raises(ValueError, match="recipient"):
        build_report_email(
            sample_report(), ENGLISH, publication=SHEETS, sender=SENDER, recipients=(), chart_png=CHART
        )


@pytest.mark.parametrize("texts", [ENGLISH, RUSSIAN], ids=["en", "ru"])
def test_the_message_is_seven_bit_clean_with_short_lines(texts: Texts) -> None:
    raw = build(sample_report(courses=(("x" * 300, BIG),)), texts).as_bytes()

    assert raw.isascii(), "no reliance on the server's 8BITMIME"
    # Headers may not be folded everywhere (a Message-ID cannot): RFC 5322's hard limit is 998.
    headers, _, body = raw.partition(b"\n\n")
    assert max(len(line) for line in headers.splitlines()) <= 998
    assert max(len(line) for line in body.splitlines()) <= 78
