-- sleep_log_segments: the segments of the logs in `sleep_logs` (registered with their log_key), as numbers for
-- features/sleep_state.py. The one join on the three strings that name a log; everything after it uses log_key.
-- $segments_from_utc / $segments_to_utc: a day before the earliest start and after the latest end of a log
-- (a log's segments lie inside it), so DuckDB skips the row groups of other dates.
select l.log_key,
    epoch_us(g.seg_start_utc) as start_us,
    g.duration_s,
    -- 0 asleep, 1 awake, 2 restless (features/sleep_state.py: ASLEEP, AWAKE, RESTLESS)
    case when g.stage in ('wake', 'awake') then 1 when g.stage = 'restless' then 2 else 0 end::utinyint as stage_kind
from sleep_segments g
join sleep_logs l using (person_id, source, source_session_id)
where g.seg_start_utc between $segments_from_utc and $segments_to_utc
