-- Successive halving: a trial is a candidate (key) trained at a fidelity
-- (rung, 0 the lowest) under a seed (0, 1, 2... at the top rung), so the
-- same key appears once per rung and seed. Every trial keeps the test
-- accuracy it reported (never searched on). Studies of kind proxy are
-- effnas bench proxy runs.
ALTER TABLE studies DROP CONSTRAINT studies_kind_check;
ALTER TABLE studies ADD CONSTRAINT studies_kind_check CHECK (kind IN ('search', 'grid', 'proxy'));
ALTER TABLE trials
    ADD COLUMN rung INTEGER NOT NULL DEFAULT 0 CHECK (rung >= 0),
    ADD COLUMN seed INTEGER NOT NULL DEFAULT 0 CHECK (seed >= 0),
    ADD COLUMN test_accuracy DOUBLE PRECISION CHECK (test_accuracy NOT IN ('NaN', 'Infinity', '-Infinity'));
ALTER TABLE trials DROP CONSTRAINT trials_study_id_key_key;
ALTER TABLE trials ADD CONSTRAINT trials_study_id_key_rung_seed_key UNIQUE (study_id, key, rung, seed);
