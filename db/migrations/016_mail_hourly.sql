-- 016_mail_hourly: what the dashboard counts outlives the rows it counted.
--
-- "Received" (messages stored in the last 24 hours, by hour) counted
-- message rows, which store_gc() now deletes once no mailbox holds them;
-- "sent" counted queue recipients marked sent, whose queue row goes as
-- soon as no recipient is pending, so mail sent in full was never counted.
-- Before deleting such rows, store_gc() and queue_remove() add them here,
-- by hour; the figures are the live rows plus these. Hours older than two
-- days are dropped by store_gc().
CREATE TABLE mail_hourly (
    hour      timestamptz PRIMARY KEY,
    received  bigint NOT NULL DEFAULT 0,
    sent      bigint NOT NULL DEFAULT 0
);
