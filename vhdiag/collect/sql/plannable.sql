-- Why planning one statement could run user-written code (vhdiag/collect/plannable.py): one
-- row per reason, none when every object it names, and every object those depend on, is built
-- in. Built in: an oid below 16384 (FirstNormalObjectId), i.e. made by initdb; CREATE FUNCTION,
-- CREATE EXTENSION and every other CREATE after it get higher oids.
--
-- Inputs, from vhdiag.analysis.plan_safety.names(): the names of the functions, operators,
-- types, collations and relations the statement uses (in any schema: search_path may resolve
-- an unqualified name to any of them), and whether it writes (then column defaults count).
-- plannable.py runs it with search_path = pg_catalog (plannable_search_path.sql), so every
-- function and operator here is a built-in one; types are exact besides (name = name).
WITH /* vhdiag */ RECURSIVE rels (oid, root) AS (
    SELECT c.oid, c.oid
    FROM pg_class AS c
    WHERE c.relname = ANY (CAST(:relations AS name[]))
  UNION
    -- What the planner opens besides: the relations a view's (or any rule's) query reads, and
    -- inheritance children and partitions.
    SELECT x.oid, r.root
    FROM rels AS r
    CROSS JOIN LATERAL (
        SELECT d.refobjid AS oid
        FROM pg_rewrite AS w
        JOIN pg_depend AS d ON d.classid = CAST('pg_catalog.pg_rewrite' AS regclass) AND d.objid = w.oid
                           AND d.refclassid = CAST('pg_catalog.pg_class' AS regclass)
        WHERE w.ev_class = r.oid
      UNION ALL
        SELECT i.inhrelid FROM pg_inherits AS i WHERE i.inhparent = r.oid
    ) AS x
),
-- Every part of those relations whose expressions the planner reads (and may fold or call):
-- the relation itself (column types, partition key), rules, column defaults (for writes; and
-- generated columns always), constraints, indexes (expressions, predicates, operator classes),
-- extended statistics (expressions) and row-level security policies.
parts (classid, objid, rel, root, part) AS (
    SELECT CAST('pg_catalog.pg_class' AS regclass), r.oid, r.oid, r.root, 'definition' FROM rels AS r
  UNION ALL
    SELECT CAST('pg_catalog.pg_rewrite' AS regclass), w.oid, r.oid, r.root,
           CASE WHEN w.rulename = CAST('_RETURN' AS name) THEN 'view definition' ELSE 'rule' END
    FROM rels AS r JOIN pg_rewrite AS w ON w.ev_class = r.oid
  UNION ALL
    SELECT CAST('pg_catalog.pg_attrdef' AS regclass), a.oid, r.oid, r.root, 'column default'
    FROM rels AS r
    JOIN pg_attrdef AS a ON a.adrelid = r.oid
    JOIN pg_attribute AS att ON att.attrelid = a.adrelid AND att.attnum = a.adnum
    WHERE CAST(:writes AS boolean) OR att.attgenerated <> CAST('' AS "char")
  UNION ALL
    SELECT CAST('pg_catalog.pg_constraint' AS regclass), c.oid, r.oid, r.root, 'constraint'
    FROM rels AS r JOIN pg_constraint AS c ON c.conrelid = r.oid
  UNION ALL
    SELECT CAST('pg_catalog.pg_class' AS regclass), i.indexrelid, r.oid, r.root, 'index'
    FROM rels AS r JOIN pg_index AS i ON i.indrelid = r.oid
  UNION ALL
    SELECT CAST('pg_catalog.pg_statistic_ext' AS regclass), s.oid, r.oid, r.root, 'statistics object'
    FROM rels AS r JOIN pg_statistic_ext AS s ON s.stxrelid = r.oid
  UNION ALL
    SELECT CAST('pg_catalog.pg_policy' AS regclass), p.oid, r.oid, r.root, 'policy'
    FROM rels AS r JOIN pg_policy AS p ON p.polrelid = r.oid
),
-- Classes of objects that are, or bring, code: a user-defined one of these is never trusted.
code_classes (classid) AS (
    SELECT CAST(c AS regclass)
    FROM unnest(CAST(ARRAY['pg_catalog.pg_proc', 'pg_catalog.pg_operator', 'pg_catalog.pg_type',
                           'pg_catalog.pg_collation', 'pg_catalog.pg_opclass', 'pg_catalog.pg_opfamily',
                           'pg_catalog.pg_am', 'pg_catalog.pg_foreign_server',
                           'pg_catalog.pg_foreign_data_wrapper', 'pg_catalog.pg_ts_config',
                           'pg_catalog.pg_ts_dict', 'pg_catalog.pg_transform', 'pg_catalog.pg_language']
                     AS text[])) AS c
),
-- User-defined types whose values need no user code: enums, and domains over a built-in type
-- whose constraints use only built-in objects (and arrays of either).
plain_types (oid) AS (
    SELECT t.oid
    FROM pg_type AS t
    JOIN pg_type AS b ON b.oid = CASE WHEN t.typcategory = CAST('A' AS "char") AND t.typelem <> CAST(0 AS oid)
                                      THEN t.typelem ELSE t.oid END
    WHERE b.typtype = CAST('e' AS "char")
       OR (b.typtype = CAST('d' AS "char") AND b.typbasetype < CAST(16384 AS oid)
           AND NOT EXISTS (SELECT 1
                           FROM pg_constraint AS c
                           JOIN pg_depend AS d ON d.classid = CAST('pg_catalog.pg_constraint' AS regclass)
                                              AND d.objid = c.oid
                           WHERE c.contypid = b.oid AND d.refobjid >= CAST(16384 AS oid)
                             AND d.refclassid IN (SELECT classid FROM code_classes)
                             AND NOT (d.refclassid = CAST('pg_catalog.pg_type' AS regclass) AND d.refobjid = b.oid)))
),
user_objects (classid, objid, name, what) AS (
    SELECT CAST('pg_catalog.pg_proc' AS regclass), p.oid, p.proname,
           'calls user-defined function ' || quote_ident(CAST(n.nspname AS text)) || '.' || quote_ident(CAST(p.proname AS text))
    FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
    WHERE p.oid >= CAST(16384 AS oid)
  UNION ALL
    SELECT CAST('pg_catalog.pg_operator' AS regclass), o.oid, o.oprname,
           'uses user-defined operator ' || quote_ident(CAST(n.nspname AS text)) || '.' || CAST(o.oprname AS text)
    FROM pg_operator AS o JOIN pg_namespace AS n ON n.oid = o.oprnamespace
    WHERE o.oid >= CAST(16384 AS oid)
  UNION ALL
    SELECT CAST('pg_catalog.pg_type' AS regclass), t.oid, t.typname,
           'uses user-defined type ' || quote_ident(CAST(n.nspname AS text)) || '.' || quote_ident(CAST(t.typname AS text))
    FROM pg_type AS t JOIN pg_namespace AS n ON n.oid = t.typnamespace
    WHERE t.oid >= CAST(16384 AS oid) AND t.oid NOT IN (SELECT oid FROM plain_types)
  UNION ALL
    SELECT CAST('pg_catalog.pg_collation' AS regclass), c.oid, c.collname,
           'uses user-defined collation ' || quote_ident(CAST(n.nspname AS text)) || '.' || quote_ident(CAST(c.collname AS text))
    FROM pg_collation AS c JOIN pg_namespace AS n ON n.oid = c.collnamespace
    WHERE c.oid >= CAST(16384 AS oid)
),
named (classid, name) AS (
    SELECT CAST('pg_catalog.pg_proc' AS regclass), f FROM unnest(CAST(:functions AS name[])) AS f
  UNION ALL
    SELECT CAST('pg_catalog.pg_operator' AS regclass), o FROM unnest(CAST(:operators AS name[])) AS o
  UNION ALL
    SELECT CAST('pg_catalog.pg_type' AS regclass), t FROM unnest(CAST(:types AS name[])) AS t
  UNION ALL
    SELECT CAST('pg_catalog.pg_collation' AS regclass), c FROM unnest(CAST(:collations AS name[])) AS c
),
relation_names (oid, label) AS (
    SELECT c.oid, quote_ident(CAST(n.nspname AS text)) || '.' || quote_ident(CAST(c.relname AS text)) || ' ('
           || CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'v' THEN 'view'
                             WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table'
                             WHEN 'i' THEN 'index' WHEN 'I' THEN 'partitioned index' ELSE 'relation' END || ')'
    FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.oid IN (SELECT oid FROM rels UNION SELECT root FROM rels)
),
reasons (rank, reason) AS (
    -- 1. A function, operator, type or collation the statement names has a user-defined namesake.
    SELECT 1, u.what
    FROM named AS nm
    JOIN user_objects AS u ON u.classid = nm.classid AND u.name = nm.name
  UNION ALL
    -- 2. A cast between built-in types that a superuser added: implicit coercions may call it.
    SELECT 2, 'a user-defined cast from ' || CAST(CAST(c.castsource AS regtype) AS text) || ' to '
              || CAST(CAST(c.casttarget AS regtype) AS text) || ' exists'
    FROM pg_cast AS c
    WHERE c.oid >= CAST(16384 AS oid) AND c.castsource < CAST(16384 AS oid) AND c.casttarget < CAST(16384 AS oid)
  UNION ALL
    -- 3. A relation whose planning runs code by its nature.
    SELECT 3, 'uses ' || rn.label || CASE WHEN r.oid <> r.root THEN ', which reads ' || rl.label ELSE '' END
              || CASE WHEN c.relkind = CAST('f' AS "char") THEN ', whose foreign-data wrapper runs when it is planned'
                      WHEN c.relrowsecurity THEN ', which has row-level security policies'
                      ELSE ', which has rules' END
    FROM rels AS r
    JOIN pg_class AS c ON c.oid = r.oid
    JOIN relation_names AS rn ON rn.oid = r.root
    JOIN relation_names AS rl ON rl.oid = r.oid
    WHERE c.relkind = CAST('f' AS "char") OR c.relrowsecurity
       OR (c.relhasrules AND c.relkind <> CAST('v' AS "char"))
  UNION ALL
    -- 4. A part of a relation the planner reads that depends on a user-defined object.
    SELECT 4, 'uses ' || rn.label || CASE WHEN p.rel <> p.root THEN ', which reads ' || rl.label ELSE '' END
              || ', whose ' || p.part || ' '
              || coalesce(u.what, 'uses user-defined ' || pg_describe_object(d.refclassid, d.refobjid, 0))
    FROM parts AS p
    JOIN pg_depend AS d ON d.classid = p.classid AND d.objid = p.objid
    JOIN relation_names AS rn ON rn.oid = p.root
    JOIN relation_names AS rl ON rl.oid = p.rel
    LEFT JOIN user_objects AS u ON u.classid = d.refclassid AND u.objid = d.refobjid
    WHERE d.refobjid >= CAST(16384 AS oid)
      AND d.refclassid IN (SELECT classid FROM code_classes)
      AND NOT (d.refclassid = CAST('pg_catalog.pg_type' AS regclass) AND d.refobjid IN (SELECT oid FROM plain_types))
)
SELECT DISTINCT rank, reason FROM reasons ORDER BY rank, reason
