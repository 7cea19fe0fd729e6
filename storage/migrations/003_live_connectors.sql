-- live connectors: encrypted OAuth tokens with granted scopes, sync bookmarks per person x data type
CREATE TABLE oauth_tokens (
    person_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    token_ciphertext BLOB NOT NULL,   -- Fernet (connectors.token_vault); never the plain token
    granted_scopes VARCHAR NOT NULL,  -- space-separated, as the token endpoint granted them
    consented_at TIMESTAMP NOT NULL,  -- UTC; when the person last went through consent
    updated_at TIMESTAMP NOT NULL,    -- UTC; last refresh
    PRIMARY KEY (person_id, source)
);
CREATE TABLE sync_state (
    person_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    data_type VARCHAR NOT NULL,
    synced_through DATE,              -- last civil date fetched in full (the bookmark)
    backfilled_from DATE,             -- earliest civil date a backfill has reached (its checkpoint)
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (person_id, source, data_type)
);
