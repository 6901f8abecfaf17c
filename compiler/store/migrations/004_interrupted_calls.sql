-- 004: ledger rows are created when a request is actually sent; a call sent but never answered before
-- its process died becomes status 'interrupted' (older stores' 'pending' rows read the same). Each
-- sent call carries its size so that an interrupted one states what it could have cost: an estimate
-- of its prompt tokens and upper bounds on its prompt tokens, completion tokens (max_tokens) and
-- dollars at the model's price. Status values: pending (in flight) / retrying (waiting for its next
-- attempt) / ok / retried / failed / cache_hit / interrupted.

ALTER TABLE llm_calls ADD COLUMN est_prompt_tokens BIGINT;      -- about 4 characters a token (an estimate)
ALTER TABLE llm_calls ADD COLUMN max_prompt_tokens BIGINT;      -- at most: one token per UTF-8 byte + formatting
ALTER TABLE llm_calls ADD COLUMN max_completion_tokens BIGINT;  -- the request's max_tokens
ALTER TABLE llm_calls ADD COLUMN max_usd DOUBLE;                -- both bounds at the model's price
