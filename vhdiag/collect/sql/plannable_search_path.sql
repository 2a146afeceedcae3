-- Pins search_path (for this transaction only) around plannable.sql, and restores it: with
-- only pg_catalog on the path, no function or operator a user created can resolve there.
SELECT /* vhdiag */ pg_catalog.current_setting('search_path') AS saved,
       pg_catalog.set_config('search_path', :path, true) AS path
