"""The day's report as an email: a plain-text part and an HTML alternative with the chart inline.

Structure (what mail clients expect for an HTML mail with an embedded picture)::

    multipart/alternative
    ├── text/plain                      the report as aligned text tables
    └── multipart/related
        ├── text/html                   the same content; <img src="cid:...">
        └── image/png                   the chart, inline, with that Content-ID

The content is the report's, in the order every destination uses: title and date, where the
report was published (or that publishing failed), the warnings, the summary tables, the chart.
Every value is escaped: course ids and check observations are data, not markup.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Sequence
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import urlsplit

from include.learning_platform.publication import Destination, Publication
from include.learning_platform.rendering import html_table, text_table
from include.learning_platform.report_layout import notices, summary_tables
from include.learning_platform.report_model import DailyReport
from include.learning_platform.texts import Texts

CHART_FILENAME = "history.png"
CHART_WIDTH, CHART_HEIGHT = 720, 300
# Message-IDs need a domain; the sender's is the honest one. This one is for a sender without it.
FALLBACK_DOMAIN = "localhost"
# 7-bit transfer encodings (quoted-printable or base64, whichever is shorter for the text):
# no reliance on the server's 8BITMIME.
POLICY = policy.default.clone(cte_type="7bit")

_BODY_STYLE = "margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;color:#202124;background:#ffffff"
_TITLE_STYLE = "font-size:20px;margin:0 0 12px 0"
_PARAGRAPH_STYLE = "font-size:14px;margin:0 0 12px 0"
_WARNING_STYLE = "font-size:14px;margin:0 0 12px 0;color:#b00020;font-weight:bold"
_NOTE_STYLE = "font-size:12px;margin:0 0 20px 0;color:#5f6368"


def build_report_email(
    report: DailyReport,
    texts: Texts,
    *,
    publication: Publication | None,
    sender: str,
    recipients: Sequence[str],
    chart_png: bytes,
) -> EmailMessage:
    """The report mail for ``report``; ``publication`` None means publishing the report failed.

    ``sender`` may be empty: ``include.common.email.send_message`` then uses the connection's
    ``from_email``. An empty ``chart_png`` leaves the chart out (the HTML is then not related).
    """
    if not recipients:
        raise ValueError("the report email needs at least one recipient")
    day = report.day.isoformat()
    if publication is None:
        subject = texts.subject_not_updated
    elif not report.reliable:
        subject = texts.subject_unreliable
    else:
        subject = texts.subject
    domain = sender.rpartition("@")[2].strip("> ") or FALLBACK_DOMAIN

    message = EmailMessage(policy=POLICY)
    subject = subject.format(day=day)
    if report.stats.partial:
        subject = texts.subject_test_mode.format(subject=subject)
    message["Subject"] = subject
    if sender:
        message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Message-ID"] = make_msgid(idstring="report", domain=domain)

    # Named after the picture, not random: the same report makes the same message, whose digest
    # report_delivery records.
    chart_cid = f"<chart.{hashlib.sha256(chart_png).hexdigest()[:24]}@{domain}>" if chart_png else None
    message.set_content(_plain_text(report, texts, publication))
    message.add_alternative(_html(report, texts, publication, chart_cid), subtype="html")
    if chart_cid is not None:
        html_part = message.get_payload()[1]
        html_part.add_related(
            chart_png,
            maintype="image",
            subtype="png",
            cid=chart_cid,
            disposition="inline",
            filename=CHART_FILENAME,
        )
    return message


def _plain_text(report: DailyReport, texts: Texts, publication: Publication | None) -> str:
    overview, figures, reasons, courses, checks = summary_tables(report, texts)
    language = texts.language
    blocks = [
        f"{texts.report_title} — {report.day.isoformat()}",
        _publication_sentence(texts, publication),
        *notices(report, texts),
        text_table(overview, language),
        text_table(figures, language),
        text_table(reasons, language) + (f"\n{texts.reasons_may_overlap}" if reasons.rows else ""),
        text_table(courses, language),
        text_table(checks, language),
    ]
    return "\n\n".join(blocks) + "\n"


def _html(report: DailyReport, texts: Texts, publication: Publication | None, chart_cid: str | None) -> str:
    overview, figures, reasons, courses, checks = summary_tables(report, texts)
    language = texts.language
    title = html.escape(f"{texts.report_title} — {report.day.isoformat()}")
    sections = [
        f'<h1 style="{_TITLE_STYLE}">{title}</h1>',
        _publication_html(texts, publication),
        *(f'<p style="{_WARNING_STYLE}">{html.escape(text)}</p>' for text in notices(report, texts)),
        html_table(overview, language),
        html_table(figures, language),
        html_table(reasons, language),
    ]
    if reasons.rows:
        sections.append(f'<p style="{_NOTE_STYLE}">{html.escape(texts.reasons_may_overlap)}</p>')
    sections += [html_table(courses, language), html_table(checks, language)]
    if chart_cid is not None:
        sections.append(
            f'<p style="{_PARAGRAPH_STYLE}"><img src="cid:{html.escape(chart_cid[1:-1])}" '
            f'alt="{html.escape(texts.chart_title)}" width="{CHART_WIDTH}" height="{CHART_HEIGHT}" '
            'style="display:block;max-width:100%;height:auto;border:0"></p>'
        )
    body = "\n".join(sections)
    return (
        f'<!DOCTYPE html>\n<html lang="{language.value}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<title>{title}</title>\n</head>\n<body style="{_BODY_STYLE}">\n{body}\n</body>\n</html>\n'
    )


def _publication_sentence(texts: Texts, publication: Publication | None) -> str:
    if publication is None:
        return texts.report_not_updated
    if publication.destination is Destination.SHEETS:
        return texts.published_to_sheets.format(url=publication.location)
    return texts.written_locally.format(path=publication.location)


def _publication_html(texts: Texts, publication: Publication | None) -> str:
    if publication is None:
        return f'<p style="{_WARNING_STYLE}">{html.escape(texts.report_not_updated)}</p>'
    location = html.escape(publication.location)
    if publication.destination is Destination.SHEETS:
        # Only a web address becomes a link: a location is data, and "javascript:" is not a sheet.
        if urlsplit(publication.location).scheme in ("http", "https"):
            location = f'<a href="{location}">{location}</a>'
        return (
            f'<p style="{_PARAGRAPH_STYLE}">{html.escape(texts.published_to_sheets).format(url=location)}</p>'
        )
    sentence = html.escape(texts.written_locally).format(path=f"<code>{location}</code>")
    return f'<p style="{_WARNING_STYLE}">{sentence}</p>'
