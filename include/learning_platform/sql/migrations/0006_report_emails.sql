-- The report emails sent, one row per run and day, so that a retry of `send_email` never mails
-- the report a second time (include/learning_platform/report_delivery.py explains the states).
-- A run is its id and Airflow's clear number: clearing a run is a deliberate rerun and mails
-- again, a retry keeps the number and does not.
CREATE TABLE learning_platform.report_emails (
    report_date    date        NOT NULL,
    dag_run_id     text        NOT NULL,
    clear_number   integer     NOT NULL CHECK (clear_number >= 0),
    -- The message of the try that holds the row; a try takes over a row nothing was sent from.
    message_id     text        NOT NULL UNIQUE,
    content_digest text        NOT NULL,  -- sha256 of the subject, recipients and every part
    recipients     text[]      NOT NULL,
    prepared_at    timestamptz NOT NULL DEFAULT now(),
    handed_over_at timestamptz,  -- the content began to go to the server: it may have arrived
    sent_at        timestamptz,  -- the server answered 250: it has the message
    PRIMARY KEY (report_date, dag_run_id, clear_number),
    CHECK (sent_at IS NULL OR handed_over_at IS NOT NULL)
);
