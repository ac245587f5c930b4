-- The jobs an operator's filter matches (queue_jobs/services/ops_jobs.py): every filter
-- optional (NULL: not filtered), any combination. The search (ops_search_jobs), the
-- counts by status (ops_count_jobs) and the bulk actions' batches read it, so the filter
-- is written once.
-- LANGUAGE sql, STABLE, one SELECT: PostgreSQL inlines it into the calling query, where
-- with the values bound (the store runs these queries unprepared: a custom plan each
-- time) each `x IS NULL OR ...` of an absent filter folds away and each given one is an
-- index condition (migration 0019 lists which index serves which filter).
-- _email: a user's email as stored (normalised); _id_low/_id_high: an id prefix as the
-- range of ids that start with it.
CREATE OR REPLACE FUNCTION ops_jobs_matching(_status text, _type text, _error_code text,
                                             _user_id uuid, _email text, _session_id text,
                                             _created_from timestamptz,
                                             _created_to timestamptz,
                                             _id_low uuid, _id_high uuid)
    RETURNS SETOF jobs
    LANGUAGE sql STABLE
AS $$
    SELECT *
      FROM jobs
     WHERE (_status IS NULL OR status = _status)
       AND (_type IS NULL OR type = _type)
       AND (_error_code IS NULL OR error_code = _error_code)
       AND (_user_id IS NULL OR owner_user_id = _user_id)
       AND (_email IS NULL
            OR owner_user_id = (SELECT id FROM users WHERE email = _email))
       AND (_session_id IS NULL OR owner_session_id = _session_id)
       AND (_created_from IS NULL OR created_at >= _created_from)
       AND (_created_to IS NULL OR created_at < _created_to)
       AND (_id_low IS NULL OR id BETWEEN _id_low AND _id_high)
$$;
