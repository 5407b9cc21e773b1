// node-postgres (`pg`, what Node notebooks, Cube and many JS BI back ends use) against
// `macrolake serve`: untyped parameters of every common type (node-postgres sends them all as
// text with no type), `LIMIT $1`, a named prepared statement run twice, the catalog queries a
// schema browser runs, and writes refused with 42501. Run by tests/clients/run.sh with the PG*
// variables set and MACROLAKE_CA pointing at the server's certificate; exits non-zero on the
// first thing that does not work.
const fs = require("fs");
const { Client } = require("pg");

function check(cond, message) {
  if (!cond) {
    console.error(`FAIL: ${message}`);
    process.exit(1);
  }
}

async function refused(client, sql) {
  try {
    await client.query(sql);
  } catch (e) {
    check(e.code === "42501", `${sql}: SQLSTATE ${e.code} (${e.message}), expected 42501`);
    return;
  }
  check(false, `${sql} was not refused`);
}

async function main() {
  // Verify the server's certificate (no rejectUnauthorized: false).
  const client = new Client({
    ssl: { ca: fs.readFileSync(process.env.MACROLAKE_CA), servername: "localhost" },
  });
  await client.connect();

  const version = await client.query("SELECT version() AS v");
  check(/^PostgreSQL \d+/.test(version.rows[0].v), `version(): ${version.rows[0].v}`);

  // Untyped parameters whose position fixes their type: a date, a float, LIMIT and OFFSET.
  const page = await client.query(
    "SELECT date, net_liquidity_musd FROM marts.liquidity_vs_risk " +
      "WHERE date >= $1 AND net_liquidity_musd > $2 ORDER BY date LIMIT $3 OFFSET $4",
    ["2025-01-01", 1.5, 5, 2],
  );
  check(page.rows.length === 5, `LIMIT $3: ${page.rows.length} rows`);
  check(page.rows[0].date instanceof Date, `date column parsed as ${typeof page.rows[0].date}`);
  check(page.rows[0].date >= new Date("2025-01-01"), `first date ${page.rows[0].date}`);
  check(typeof page.rows[0].net_liquidity_musd === "number", "float8 parsed as a number");
  const all = await client.query(
    "SELECT date FROM marts.liquidity_vs_risk WHERE date >= $1 ORDER BY date LIMIT 7",
    ["2025-01-01"],
  );
  check(
    all.rows[2].date.getTime() === page.rows[0].date.getTime(),
    "OFFSET $4 skipped two rows",
  );

  // Parameters of every common type, typed by casts in the SQL.
  const types = await client.query(
    "SELECT $1::text AS t, $2::bigint AS i, $3::double precision AS f, $4::boolean AS b, " +
      "$5::date AS d, $6::timestamptz AS ts",
    ["it's", 9007199254740991n.toString(), 2.5, true, "2026-06-05", "2026-06-05T12:30:00Z"],
  );
  const r = types.rows[0];
  check(r.t === "it's", `text: ${r.t}`);
  check(r.i === "9007199254740991", `bigint (node-postgres keeps int8 as text): ${r.i}`);
  check(r.f === 2.5, `double: ${r.f}`);
  check(r.b === true, `boolean: ${r.b}`);
  check(r.d instanceof Date && r.d.getFullYear() === 2026, `date: ${r.d}`);
  check(
    r.ts instanceof Date && r.ts.toISOString() === "2026-06-05T12:30:00.000Z",
    `timestamptz: ${r.ts && r.ts.toISOString()}`,
  );

  // A named prepared statement (parsed once, executed twice with different values).
  const named = { name: "rows-since", text: "SELECT count(*) AS n FROM marts.liquidity_vs_risk WHERE date >= $1" };
  const a = await client.query({ ...named, values: ["2026-01-01"] });
  const b = await client.query({ ...named, values: ["2025-01-01"] });
  check(Number(b.rows[0].n) > Number(a.rows[0].n) && Number(a.rows[0].n) > 0, `counts ${a.rows[0].n}, ${b.rows[0].n}`);

  // What a schema browser asks.
  const tables = await client.query(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
    ["marts"],
  );
  const names = tables.rows.map((t) => t.table_name);
  check(names.includes("liquidity_vs_risk"), `marts tables: ${names}`);
  const cols = await client.query(
    "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
    ["marts", "liquidity_vs_risk"],
  );
  check(cols.rows.some((c) => c.column_name === "net_liquidity_musd"), "columns of liquidity_vs_risk");

  // Read-only: writes are refused with insufficient_privilege.
  await refused(client, "CREATE TABLE marts.x (a int)");
  await refused(client, "DELETE FROM marts.co_highs");
  // The session still works after the refusals.
  const after = await client.query("SELECT 1 AS one");
  check(String(after.rows[0].one) === "1", "query after refusals");

  await client.end();
  console.log(`node-postgres ${require("pg/package.json").version}: parameters, LIMIT/OFFSET $n, prepared statements, catalog, writes refused`);
}

main().catch((e) => {
  console.error(`FAIL: ${e.stack || e}`);
  process.exit(1);
});
