-- 006: stage outputs written in partitions, stored as the columns a stage adds.
--
-- layout: 'legacy' (a full table so_<fp> in insertion order, as written before this migration),
-- 'full' (a table sd_<fp> with every column and a _pos order key), 'delta' (a table sd_<fp> with
-- row_id, parent_ids, _pos, _base and only the columns the stage wrote; the others come from the
-- row _base of its parent's output through the views sp_<fp> / so_<fp>).
ALTER TABLE stage_outputs ADD COLUMN layout VARCHAR DEFAULT 'legacy';
ALTER TABLE stage_outputs ADD COLUMN columns JSON;

-- A stage being written: its layout and partitioning are fixed when it starts, so a resumed run
-- cuts the same partitions and skips the committed ones.
CREATE TABLE stage_runs (
    fingerprint    VARCHAR PRIMARY KEY,
    layout         VARCHAR NOT NULL,
    parent         VARCHAR,
    partition_rows BIGINT NOT NULL,
    columns        JSON,                 -- the output's columns, in order (set by the first partition)
    started_at     TIMESTAMP NOT NULL
);

-- One row per committed partition, in the same transaction as its rows and rejections.
CREATE TABLE stage_partitions (
    fingerprint  VARCHAR NOT NULL,
    part         INTEGER NOT NULL,
    rows_in      BIGINT NOT NULL,
    rows_out     BIGINT NOT NULL,
    seconds      DOUBLE NOT NULL,
    committed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (fingerprint, part)
);
