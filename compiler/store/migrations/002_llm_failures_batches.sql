-- 002: what the LLM layer needs beyond the 001 ledger: failed requests (never a null in a corpus),
-- Batch API bookkeeping (recorded before submission so a crash never submits twice), and the
-- batch a ledger row belongs to.

CREATE TABLE llm_failures (
    call_id     VARCHAR PRIMARY KEY,     -- the llm_calls row of the failed request
    key         VARCHAR NOT NULL,        -- its cache key
    backend     VARCHAR NOT NULL,
    model       VARCHAR NOT NULL,
    role        VARCHAR,
    stage       VARCHAR,
    stage_fp    VARCHAR,
    reason      VARCHAR NOT NULL,        -- rate_limited / timeout / connection / http_500 / budget ...
    detail      VARCHAR,
    attempts    INTEGER NOT NULL,
    usd         DOUBLE NOT NULL DEFAULT 0,
    served_rows JSON,
    created_at  TIMESTAMP NOT NULL
);

CREATE TABLE llm_batches (
    local_id      VARCHAR PRIMARY KEY,   -- ours, written before anything is uploaded
    backend       VARCHAR NOT NULL,
    model         VARCHAR NOT NULL,
    role          VARCHAR,
    stage         VARCHAR,
    stage_fp      VARCHAR,
    endpoint      VARCHAR NOT NULL,      -- /v1/chat/completions or /v1/completions
    status        VARCHAR NOT NULL,      -- preparing / submitted / done / failed
    input_file_id VARCHAR,
    remote_id     VARCHAR,               -- the provider's batch id, once created
    items         BIGINT NOT NULL,
    round         INTEGER NOT NULL DEFAULT 0,  -- 0 = first submission, k = k-th resubmission
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);

ALTER TABLE llm_calls ADD COLUMN batch_id VARCHAR;   -- llm_batches.local_id for Batch API calls
