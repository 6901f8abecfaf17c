-- 007: the execution cache becomes an append-only table.
--
-- With a primary key, every batch of results stored while a stage runs paid a uniqueness check
-- against the whole key index, so a store's cost per batch grew with the cache (at a million
-- results, ~40x the cost of an append). Keys are looked up with a join; a key stored twice (two
-- compiles racing on one job) holds the same result, and a lookup takes either.
CREATE TABLE exec_cache_v7 (
    key        VARCHAR NOT NULL,         -- hash(code, tests, limits, runtime version)
    result     JSON NOT NULL,
    created_at TIMESTAMP NOT NULL
);
INSERT INTO exec_cache_v7 SELECT key, result, created_at FROM exec_cache ORDER BY created_at;
DROP TABLE exec_cache;
ALTER TABLE exec_cache_v7 RENAME TO exec_cache;
