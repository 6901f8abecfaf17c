-- 001: the spine: stage outputs keyed by fingerprint, rejections, corpora and versions,
-- the LLM request cache and call ledger, the execution cache.

CREATE TABLE stage_outputs (
    fingerprint   VARCHAR PRIMARY KEY,
    stage         VARCHAR NOT NULL,      -- the stage's name in the recipe
    uses          VARCHAR NOT NULL,      -- the registered stage it runs
    stage_version INTEGER NOT NULL,
    params        JSON NOT NULL,         -- canonical params (defaults dropped)
    parents       JSON NOT NULL,         -- parent fingerprints
    table_name    VARCHAR NOT NULL,      -- the table holding its output rows
    rows_in       BIGINT NOT NULL,
    rows_out      BIGINT NOT NULL,
    seconds       DOUBLE NOT NULL,
    created_at    TIMESTAMP NOT NULL
);

CREATE TABLE rejections (
    fingerprint VARCHAR NOT NULL,        -- the stage output that dropped the row
    row_id      VARCHAR NOT NULL,
    task_id     VARCHAR,
    reason      VARCHAR NOT NULL,
    detail      VARCHAR
);

CREATE TABLE corpora (
    name       VARCHAR PRIMARY KEY,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE versions (
    corpus           VARCHAR NOT NULL,
    version          INTEGER NOT NULL,
    fingerprint      VARCHAR NOT NULL,   -- fingerprint of the final stage output
    stages           JSON NOT NULL,      -- ordered [{name, uses, fingerprint}]
    recipe           JSON NOT NULL,      -- the resolved recipe
    recipe_yaml      VARCHAR NOT NULL,   -- the recipe file as written
    recipe_path      VARCHAR,
    library_versions JSON NOT NULL,
    rows             BIGINT NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (corpus, version),
    UNIQUE (corpus, fingerprint)
);

CREATE TABLE llm_cache (
    key        VARCHAR PRIMARY KEY,      -- hash of the full request (see compiler/llm/types.py)
    backend    VARCHAR NOT NULL,
    model      VARCHAR NOT NULL,
    request    JSON NOT NULL,
    response   JSON NOT NULL,            -- {text, finish_reason, usage}
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE llm_calls (
    call_id           VARCHAR PRIMARY KEY,
    key               VARCHAR NOT NULL,
    backend           VARCHAR NOT NULL,
    model             VARCHAR NOT NULL,
    role              VARCHAR,           -- teacher / student / judge
    stage             VARCHAR,
    stage_fp          VARCHAR,
    status            VARCHAR NOT NULL,  -- pending / ok / retried / failed / cache_hit
    prompt_tokens     BIGINT DEFAULT 0,
    cached_tokens     BIGINT DEFAULT 0,
    completion_tokens BIGINT DEFAULT 0,
    reasoning_tokens  BIGINT DEFAULT 0,
    usd               DOUBLE DEFAULT 0,
    price_version     VARCHAR,
    latency_s         DOUBLE,
    attempts          INTEGER DEFAULT 0,
    served_rows       JSON,
    error             VARCHAR,
    created_at        TIMESTAMP NOT NULL,
    finished_at       TIMESTAMP
);

CREATE TABLE exec_cache (
    key        VARCHAR PRIMARY KEY,      -- hash(code, tests, limits, runtime version)
    result     JSON NOT NULL,
    created_at TIMESTAMP NOT NULL
);
