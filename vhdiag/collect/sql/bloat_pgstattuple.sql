-- Is pgstattuple installed, in which schema, and may this role run it? Only the C functions the
-- extension itself owns count (pg_depend deptype 'e', language c): a function of the same name
-- written by a user is never called. Catalogs only; nothing here runs pgstattuple.
SELECT /* vhdiag */ quote_ident(n.nspname) AS qschema, e.extversion AS version,
       bool_or(p.proname = 'pgstattuple_approx' AND has_function_privilege(p.oid, 'EXECUTE')) AS tables_ok,
       bool_or(p.proname = 'pgstatindex' AND has_function_privilege(p.oid, 'EXECUTE')) AS indexes_ok
FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.refobjid = e.oid
                           AND d.classid = 'pg_catalog.pg_proc'::regclass AND d.deptype = 'e'
JOIN pg_catalog.pg_proc p ON p.oid = d.objid AND p.pronamespace = e.extnamespace
JOIN pg_catalog.pg_language l ON l.oid = p.prolang AND l.lanname = 'c'
WHERE e.extname = 'pgstattuple'
  AND p.proname IN ('pgstattuple_approx', 'pgstatindex')
  AND p.pronargs = 1 AND p.proargtypes[0] = 'pg_catalog.regclass'::pg_catalog.regtype
GROUP BY n.nspname, e.extversion
