-- One-shot screening. A study may train one weight-sharing supernet: its
-- latest checkpoint (each save replaces the last) and the worker that
-- holds the right to train it, with a lease on the database's clock as a
-- trial's. Candidates scored on it are stored apart from the trials, so
-- rung 0 keeps its meaning.
CREATE TABLE supernets (
    study_id      BIGINT           PRIMARY KEY REFERENCES studies (id),
    step          INTEGER          NOT NULL DEFAULT 0 CHECK (step >= 0),
    checkpoints   INTEGER          NOT NULL DEFAULT 0 CHECK (checkpoints >= 0),
    seconds       DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (seconds >= 0 AND seconds NOT IN ('NaN', 'Infinity')),
    done          BOOLEAN          NOT NULL DEFAULT false,
    meta          BYTEA,  -- JSON, opaque to the store
    weights       BYTEA,  -- the trainer's checkpoint; NULL before the first save
    holder        TEXT             NOT NULL DEFAULT '', -- '' when released
    lease_expires TIMESTAMPTZ,
    updated       TIMESTAMPTZ      NOT NULL
);

CREATE TABLE screened (
    study_id BIGINT           NOT NULL REFERENCES studies (id),
    number   INTEGER          NOT NULL CHECK (number >= 0),
    key      TEXT             NOT NULL CHECK (key <> ''),
    choices  JSONB            NOT NULL,
    blocks   TEXT[]           NOT NULL,
    params   BIGINT           NOT NULL,
    flops    BIGINT           NOT NULL,
    score    DOUBLE PRECISION NOT NULL CHECK (score NOT IN ('NaN', 'Infinity', '-Infinity')),
    reward   DOUBLE PRECISION NOT NULL CHECK (reward NOT IN ('NaN', 'Infinity', '-Infinity')),
    step     INTEGER          NOT NULL CHECK (step >= 0),
    promoted BOOLEAN          NOT NULL DEFAULT false,
    created  TIMESTAMPTZ      NOT NULL,
    PRIMARY KEY (study_id, number)
);
