-- No paid work done twice.
-- 1. A step's parts kept as they are made (website analysis: each image as it is drawn),
--    so a step run again makes only the missing ones: step key -> {part -> value}, written
--    in the statement that saves the part (insert_step_image), dropped when the step's
--    checkpoint is written (save_steps). A constant default: no table rewrite.
-- 2. LLM usage is written as each call returns (record_llm_call: the job's llm_calls and
--    llm_tokens, and the daily rollup), not when its step ends: jobs_record_steps
--    (sql/functions) now writes the step records only, with the calls each step made.
-- lock_timeout: rather fail the deploy (and run it again) than queue every status poll
-- behind a long transaction while waiting for the ALTER TABLE's brief exclusive lock.
SET LOCAL lock_timeout = '5s';

ALTER TABLE jobs ADD COLUMN step_parts jsonb NOT NULL DEFAULT '{}';
