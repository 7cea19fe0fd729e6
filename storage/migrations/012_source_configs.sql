-- each of a person's sources may carry its own endpoint settings (a watch and a ring each with their own API and
-- OAuth endpoints): person_sources.source_config, a JSON object; empty means persons.source_config (the person's
-- one shared setting, as before) and then the environment.
ALTER TABLE person_sources ADD COLUMN source_config VARCHAR DEFAULT '{}';
