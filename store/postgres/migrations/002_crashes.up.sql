-- crashes counts the attempts that ended without a word from their worker
-- (a lease that lapsed, a running trial recovered on resume), apart from
-- interrupts and hand-backs; a study's max_attempts bounds it. memory is
-- the bytes a trial's training is estimated to need (0: not estimated);
-- workers claim only trials that fit them.
ALTER TABLE trials ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0 CHECK (crashes >= 0);
ALTER TABLE trials ADD COLUMN memory BIGINT NOT NULL DEFAULT 0 CHECK (memory >= 0);
