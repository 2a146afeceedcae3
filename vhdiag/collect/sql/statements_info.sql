-- pg_stat_statements_info, new in pg_stat_statements 1.9 (PostgreSQL 14): one row.
-- dealloc counts entries evicted because more distinct statements were seen than
-- pg_stat_statements.max; stats_reset is the last time all of pg_stat_statements was reset.
-- {pgss} is the extension's schema, quoted by the driver.
SELECT /* vhdiag */ i.dealloc,
       i.stats_reset
FROM {pgss}.pg_stat_statements_info AS i
