-- 005: the embedding cache (vectors keyed by embedder and text, computed once like LLM answers), the
-- embedders whose vectors are stored (so a later command can load the same one), and the module
-- database (AMR-Evol's verified function modules; SODA's cosine dedup reads the same cache).

CREATE TABLE embedders (
    key        VARCHAR PRIMARY KEY,      -- the embedder's identity: backend:model[@revision]
    config     JSON NOT NULL,            -- what it takes to load it again (backend, model, revision, base_url)
    dim        INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE embedding_cache (
    embedder   VARCHAR NOT NULL,         -- embedders.key
    text_key   VARCHAR NOT NULL,         -- sha256 of the text
    vector     FLOAT[] NOT NULL,         -- unit length (cosine = dot product)
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (embedder, text_key)
);

CREATE SEQUENCE module_seq START 1;

CREATE TABLE modules (
    module_id  VARCHAR PRIMARY KEY,      -- hash of name and code
    seq        BIGINT NOT NULL,          -- insertion order: a retrieval sees the modules up to its horizon
    name       VARCHAR NOT NULL,
    signature  VARCHAR NOT NULL,         -- the def line: "def f(x: int) -> int:"
    docstring  VARCHAR,
    code       VARCHAR NOT NULL,         -- the whole module (its imports included)
    tests      JSON NOT NULL,            -- assert statements, [] when none
    verified   BOOLEAN NOT NULL,         -- its tests passed in the sandbox
    origin     VARCHAR NOT NULL,         -- seed / evolved / imported
    added_fp   VARCHAR,                  -- the stage output that added it (NULL: `distillc modules import`)
    source     VARCHAR,                  -- the imported file, or the row the module came from
    embedder   VARCHAR NOT NULL,         -- embedders.key of `embedding`
    embedding  FLOAT[] NOT NULL,         -- of signature + docstring
    created_at TIMESTAMP NOT NULL
);
