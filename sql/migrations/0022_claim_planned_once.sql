-- jobs_claim (sql/functions) in PL/pgSQL: its UPDATE is planned once per session instead
-- of at every fetch that finds a dispatch. Same signature and result; the body is in its
-- file; this migration only marks the schema as changed.
SELECT 1;
