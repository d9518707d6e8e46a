-- Types, NOT NULLs and defaults, so that PostgreSQL refuses line by line at import what the target
-- would refuse for the whole drop at publish; no indexes, constraints or triggers, so COPY runs at
-- full speed.
CREATE TABLE IF NOT EXISTS {staging} (LIKE {target} INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING GENERATED)
