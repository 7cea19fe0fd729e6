-- the clinician's door: pause until a date, where the person's watch connection stands, and which emails about it went out
-- A pause may have an end: the person's emails resume by themselves after this local date (NULL: until resumed).
ALTER TABLE persons ADD COLUMN paused_until DATE;
