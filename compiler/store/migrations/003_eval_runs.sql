-- 003: evaluation runs of students (`distillc eval`), linked to the corpus version a student was
-- trained on when its model directory carries distillc_train.json.

CREATE TABLE eval_runs (
    run_id           VARCHAR PRIMARY KEY,
    model            VARCHAR NOT NULL,      -- as given on the command line (name, directory or Hub id)
    model_path       VARCHAR,               -- the resolved local directory, when there is one
    student          VARCHAR,               -- the base model it was trained from (training record)
    benchmark        VARCHAR NOT NULL,      -- humaneval / mbpp / mbpp+
    subset           VARCHAR,
    prompt_format    VARCHAR NOT NULL,      -- persd / chat / samples
    n                INTEGER NOT NULL,      -- samples per problem
    temperature      DOUBLE NOT NULL,
    top_p            DOUBLE NOT NULL,
    multistep        INTEGER NOT NULL,      -- refinement steps (0 = one-step inference)
    problems         INTEGER NOT NULL,
    pass_at_k        JSON NOT NULL,         -- {"pass@1": ...} of the final step
    per_step         JSON NOT NULL,         -- [{"pass@1": ...}, ...], one per inference step
    settings         JSON NOT NULL,         -- every setting of the run
    data             JSON NOT NULL,         -- benchmark origin and sha256 of the problems evaluated
    corpus           VARCHAR,               -- from distillc_train.json, when present
    version          INTEGER,
    fingerprint      VARCHAR,               -- the corpus version's fingerprint
    variant          VARCHAR,
    training         JSON,                  -- the whole training record
    out_dir          VARCHAR NOT NULL,
    samples_path     VARCHAR NOT NULL,
    results_path     VARCHAR NOT NULL,
    seconds          DOUBLE NOT NULL,
    isolation        VARCHAR,
    library_versions JSON NOT NULL,
    created_at       TIMESTAMP NOT NULL
);
