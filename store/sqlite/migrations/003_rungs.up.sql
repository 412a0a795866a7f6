-- Successive halving: a trial is a candidate (key) trained at a fidelity
-- (rung, 0 the lowest) under a seed (0, 1, 2... at the top rung), so the
-- same key appears once per rung and seed. Every trial keeps the test
-- accuracy it reported (never searched on). Studies of kind proxy are
-- effnas bench proxy runs.
--
-- SQLite cannot change a UNIQUE or CHECK constraint in place: both tables
-- are rebuilt (its twelve-step procedure; the migration runner turns
-- foreign keys off around the transaction and checks them before commit).
CREATE TABLE studies_new (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL DEFAULT '',
    kind         TEXT    NOT NULL CHECK (kind IN ('search', 'grid', 'proxy')),
    config       TEXT    NOT NULL CHECK (json_valid(config)),
    seed         INTEGER NOT NULL, -- uint64 bit pattern
    space_hash   TEXT    NOT NULL DEFAULT '',
    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
    status       TEXT    NOT NULL CHECK (status IN ('running', 'stopped', 'complete', 'failed')),
    created_ms   INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL
) STRICT;
INSERT INTO studies_new (id, name, kind, config, seed, space_hash, max_attempts, status, created_ms, updated_ms)
    SELECT id, name, kind, config, seed, space_hash, max_attempts, status, created_ms, updated_ms FROM studies;
DROP TABLE studies;
ALTER TABLE studies_new RENAME TO studies;

CREATE TABLE trials_new (
    study_id         INTEGER NOT NULL REFERENCES studies (id),
    number           INTEGER NOT NULL CHECK (number >= 0),
    key              TEXT    NOT NULL CHECK (key <> ''),
    rung             INTEGER NOT NULL DEFAULT 0 CHECK (rung >= 0),
    seed             INTEGER NOT NULL DEFAULT 0 CHECK (seed >= 0),
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
    test_accuracy    REAL,
    seconds          REAL    NOT NULL DEFAULT 0,
    error            TEXT    NOT NULL DEFAULT '',
    attempt          INTEGER NOT NULL DEFAULT 0,
    crashes          INTEGER NOT NULL DEFAULT 0 CHECK (crashes >= 0),
    memory           INTEGER NOT NULL DEFAULT 0 CHECK (memory >= 0),
    worker           TEXT    NOT NULL DEFAULT '',
    lease_expires_ms INTEGER NOT NULL DEFAULT 0,
    created_ms       INTEGER NOT NULL,
    updated_ms       INTEGER NOT NULL,
    PRIMARY KEY (study_id, number),
    UNIQUE (study_id, key, rung, seed),
    -- SQLite stores NaN as NULL: a complete trial must have real metrics.
    CHECK (state <> 'complete' OR (accuracy IS NOT NULL AND reward IS NOT NULL)),
    CHECK ((alpha IS NULL) = (beta IS NULL) AND (beta IS NULL) = (gamma IS NULL))
) STRICT;
INSERT INTO trials_new (study_id, number, key, choices, blocks, params, flops, alpha, beta, gamma, state,
        accuracy, reward, seconds, error, attempt, crashes, memory, worker, lease_expires_ms, created_ms, updated_ms)
    SELECT study_id, number, key, choices, blocks, params, flops, alpha, beta, gamma, state,
        accuracy, reward, seconds, error, attempt, crashes, memory, worker, lease_expires_ms, created_ms, updated_ms FROM trials;
DROP TABLE trials;
ALTER TABLE trials_new RENAME TO trials;
CREATE INDEX trials_by_state ON trials (study_id, state, number);
