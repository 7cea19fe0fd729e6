-- OAuth tokens move to their own small SQLite file beside the database (storage.tokens): a rotated token is saved the moment it arrives, while no process holds DuckDB. Store.migrate copies the rows there first.
DROP TABLE oauth_tokens;
