-- One-shot screening. A study may train one weight-sharing supernet: its
-- latest checkpoint (each save replaces the last) and the worker that
-- holds the right to train it, with a lease on the database's clock as a
-- trial's. Candidates scored on it are stored apart from the trials, so
-- rung 0 keeps its meaning.
CREATE TABLE supernets (
    study_id         INTEGER PRIMARY KEY REFERENCES studies (id),
    step             INTEGER NOT NULL DEFAULT 0 CHECK (step >= 0),
    checkpoints      INTEGER NOT NULL DEFAULT 0 CHECK (checkpoints >= 0),
    seconds          REAL    NOT NULL DEFAULT 0 CHECK (seconds >= 0), -- NaN is stored as NULL: refused
    done             INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
    meta             BLOB,     -- JSON, opaque to the store
    weights          BLOB,     -- the trainer's checkpoint; NULL before the first save
    holder           TEXT    NOT NULL DEFAULT '', -- '' when released
    lease_expires_ms INTEGER NOT NULL DEFAULT 0,
    updated_ms       INTEGER NOT NULL
) STRICT;

CREATE TABLE screened (
    study_id   INTEGER NOT NULL REFERENCES studies (id),
    number     INTEGER NOT NULL CHECK (number >= 0),
    key        TEXT    NOT NULL CHECK (key <> ''),
    choices    TEXT    NOT NULL CHECK (json_valid(choices)),
    blocks     TEXT    NOT NULL CHECK (json_valid(blocks)), -- JSON array of block strings
    params     INTEGER NOT NULL,
    flops      INTEGER NOT NULL,
    score      REAL    NOT NULL, -- NaN is stored as NULL: refused
    reward     REAL    NOT NULL,
    step       INTEGER NOT NULL CHECK (step >= 0),
    promoted   INTEGER NOT NULL DEFAULT 0 CHECK (promoted IN (0, 1)),
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (study_id, number)
) STRICT;
