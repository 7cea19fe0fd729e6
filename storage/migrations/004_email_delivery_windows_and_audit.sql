-- email delivery windows and audit
-- Each person's delivery window (local clock, start-end) and working days (MESSAGES.md: "deliver inside the
-- person's chosen window, default 07:30-08:30 local, working days").
ALTER TABLE persons ADD COLUMN delivery_window VARCHAR DEFAULT '07:30-08:30';
ALTER TABLE persons ADD COLUMN working_days VARCHAR DEFAULT 'Mon-Fri';
-- Queued mail is sent only from this instant (UTC): the start of the person's next window when it was queued.
-- NULL (rows queued before this migration) means "due now".
ALTER TABLE email_ledger ADD COLUMN deliver_after_utc TIMESTAMP;
-- One row per email handed to a transport: who, which kind and period, when, Message-ID. Never any content.
CREATE TABLE email_audit (
    person_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    period_key VARCHAR NOT NULL,
    message_id VARCHAR NOT NULL,
    sent_at TIMESTAMP NOT NULL,       -- UTC
    attempts INTEGER NOT NULL         -- delivery attempts across runs, this one included (> 1: see docs/email.md)
);
