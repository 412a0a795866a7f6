-- Times come from the database's clock (now()); leases compare against it.
CREATE TABLE studies (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         TEXT        NOT NULL DEFAULT '',
    kind         TEXT        NOT NULL CHECK (kind IN ('search', 'grid')),
    config       JSONB       NOT NULL,
    seed         BIGINT      NOT NULL, -- uint64 bit pattern
    space_hash   TEXT        NOT NULL DEFAULT '',
    max_attempts INTEGER     NOT NULL CHECK (max_attempts >= 1),
    status       TEXT        NOT NULL CHECK (status IN ('running', 'stopped', 'complete', 'failed')),
    created      TIMESTAMPTZ NOT NULL,
    updated      TIMESTAMPTZ NOT NULL
);

CREATE TABLE trials (
    study_id      BIGINT           NOT NULL REFERENCES studies (id),
    number        INTEGER          NOT NULL CHECK (number >= 0),
    key           TEXT             NOT NULL CHECK (key <> ''),
    choices       JSONB            NOT NULL,
    blocks        TEXT[]           NOT NULL,
    params        BIGINT           NOT NULL,
    flops         BIGINT           NOT NULL,
    alpha         DOUBLE PRECISION, -- alpha, beta, gamma: NULL for search trials
    beta          DOUBLE PRECISION,
    gamma         DOUBLE PRECISION,
    state         TEXT             NOT NULL CHECK (state IN ('pending', 'running', 'complete', 'failed', 'interrupted')),
    accuracy      DOUBLE PRECISION CHECK (accuracy NOT IN ('NaN', 'Infinity', '-Infinity')),
    reward        DOUBLE PRECISION CHECK (reward NOT IN ('NaN', 'Infinity', '-Infinity')),
    seconds       DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (seconds NOT IN ('NaN', 'Infinity', '-Infinity')),
    error         TEXT             NOT NULL DEFAULT '',
    attempt       INTEGER          NOT NULL DEFAULT 0,
    worker        TEXT             NOT NULL DEFAULT '',
    lease_expires TIMESTAMPTZ,
    created       TIMESTAMPTZ      NOT NULL,
    updated       TIMESTAMPTZ      NOT NULL,
    PRIMARY KEY (study_id, number),
    UNIQUE (study_id, key),
    CHECK (state <> 'complete' OR (accuracy IS NOT NULL AND reward IS NOT NULL)),
    CHECK ((alpha IS NULL) = (beta IS NULL) AND (beta IS NULL) = (gamma IS NULL))
);

CREATE INDEX trials_by_state ON trials (study_id, state, number);

CREATE TABLE controller_states (
    study_id BIGINT      PRIMARY KEY REFERENCES studies (id),
    state    BYTEA       NOT NULL,
    updated  TIMESTAMPTZ NOT NULL
);
