-- Image visibility is read through the image's job (or its post's organization) instead
-- of owner columns copied onto each image (0004). The copies needed every writer to fill
-- them, so a worker still running the previous release failed its CHECK mid-deploy; the
-- join needs nothing from writers and cannot drift from the job's owner.
ALTER TABLE images
    DROP CONSTRAINT images_owner_present,
    DROP COLUMN owner_user_id,
    DROP COLUMN owner_session_id;
