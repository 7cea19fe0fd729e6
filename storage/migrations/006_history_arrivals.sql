-- history that arrived in bulk (an export import, a backfill): retention counts from its arrival
CREATE TABLE history_arrivals (
    person_id VARCHAR NOT NULL,
    first_night DATE NOT NULL,
    last_night DATE NOT NULL,
    arrived_on DATE NOT NULL,          -- UTC date of the import or backfill; a repeat moves it forward
    PRIMARY KEY (person_id, first_night, last_night)
);
