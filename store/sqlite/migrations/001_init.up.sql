-- Times are integer milliseconds since the Unix epoch, read from the
-- database's clock (unixepoch('subsec')), never strings.
CREATE TABLE studies (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL DEFAULT '',
    kind         TEXT    NOT NULL CHECK (kind IN ('search', 'grid')),
    config       TEXT    NOT NULL CHECK (json_valid(config)),
    seed         INTEGER NOT NULL, -- uint64 bit pattern
    space_hash   TEXT    NOT NULL DEFAULT '',
    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
    status       TEXT    NOT NULL CHECK (status IN ('running', 'stopped', 'complete', 'failed')),
    created_ms   INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL
) STRICT;

CREATE TABLE trials (
    study_id         INTEGER NOT NULL REFERENCES studies (id),
    number           INTEGER NOT NULL CHECK (number >= 0),
    key              TEXT    NOT NULL CHECK (key <> ''),
    choices          TEXT    NOT NULL CHECK (json_valid(choices)),
    blocks           TEXT    NOT NULL CHECK (json_valid(blocks)), -- JSON array of block strings
    params           INTEGER NOT NULL,
    flops            INTEGER NOT NULL,
    alpha            REAL, -- alpha, beta, gamma: NULL for search trials
    beta             REAL,
    gamma            REAL,
    state            TEXT    NOT NULL CHECK (state IN ('pending', 'running', 'complete', 'failed', 'interrupted')),
    accuracy         REAL,
    reward           REAL,
    seconds          REAL    NOT NULL DEFAULT 0,
    error            TEXT    NOT NULL DEFAULT '',
    attempt          INTEGER NOT NULL DEFAULT 0,
    worker           TEXT    NOT NULL DEFAULT '',
    lease_expires_ms INTEGER NOT NULL DEFAULT 0,
    created_ms       INTEGER NOT NULL,
    updated_ms       INTEGER NOT NULL,
    PRIMARY KEY (study_id, number),
    UNIQUE (study_id, key),
    -- SQLite stores NaN as NULL: a complete trial must have real metrics.
    CHECK (state <> 'complete' OR (accuracy IS NOT NULL AND reward IS NOT NULL)),
    CHECK ((alpha IS NULL) = (beta IS NULL) AND (beta IS NULL) = (gamma IS NULL))
) STRICT;

CREATE INDEX trials_by_state ON trials (study_id, state, number);

CREATE TABLE controller_states (
    study_id   INTEGER PRIMARY KEY REFERENCES studies (id),
    state      BLOB    NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;
