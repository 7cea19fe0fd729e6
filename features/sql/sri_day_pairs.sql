-- sri_day_pairs: the SRI day-pair agreement of each night an SRI window of `signal_targets(person_id,
-- person_index, first_night, last_night)` reads, with the calendar night before: the share of the 1,440 minutes of
-- the noon-to-noon sleep state in the same state, 1 - popcount(xor) / 1440. Only nights that have both states.
-- From 14 nights before a person's first target, as night_signal_inputs.sql reads them (the pair of that night,
-- whose night before is not read, falls in no target's 14-night window). A query of its own: carried through the
-- sorted read of every night, the 180-byte states cost more than all else there (features/windows.py places
-- these pairs among the nights by person_index and day_number).
-- $first_target_night / $last_target_night: the targets' overall span (for skipping row groups).
with

targets as (
    select person_id, person_index, first_night::date as first_night, last_night::date as last_night
    from signal_targets
),

states as (
    select t.person_index, f.night_date, f.sleep_state_bits
    from nightly_features f
    join targets t on f.person_id = t.person_id and f.night_date between t.first_night - 14 and t.last_night
    where f.night_date between $first_target_night - 14 and $last_target_night
        and bit_length(f.sleep_state_bits) = 1440
)

select s.person_index, (s.night_date - date '2000-01-01')::integer as day_number,
    1.0::double - bit_count(xor(s.sleep_state_bits, p.sleep_state_bits))::double / 1440.0::double as sri_pair
from states s
join states p on p.person_index = s.person_index and p.night_date = s.night_date - 1
