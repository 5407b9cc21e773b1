// pgjdbc (the driver of Metabase, DBeaver, Tableau and every JVM tool) against `macrolake serve`:
// DatabaseMetaData (schemas, tables, columns with their JDBC types), a prepared query with a date
// and an integer parameter, and writes refused with 42501. Run by tests/clients/run.sh as
// `java -cp /usr/share/java/postgresql.jar tests/clients/Jdbc.java` with the PG* variables set
// and MACROLAKE_CA pointing at the server's certificate; exits non-zero on the first failure.
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.Date;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

public class Jdbc {
    static void check(boolean cond, String message) {
        if (!cond) {
            System.err.println("FAIL: " + message);
            System.exit(1);
        }
    }

    static void refused(Connection c, String sql) {
        try (Statement s = c.createStatement()) {
            s.execute(sql);
        } catch (SQLException e) {
            check("42501".equals(e.getSQLState()),
                sql + ": SQLSTATE " + e.getSQLState() + " (" + e.getMessage() + "), expected 42501");
            return;
        }
        check(false, sql + " was not refused");
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + System.getenv("PGHOST") + ":" + System.getenv("PGPORT")
            + "/" + System.getenv("PGDATABASE");
        Properties props = new Properties();
        props.setProperty("user", System.getenv("PGUSER"));
        props.setProperty("password", System.getenv("PGPASSWORD"));
        // TLS with the server's certificate checked (verify-ca: the test's certificate names
        // localhost, the server listens on 127.0.0.1).
        props.setProperty("sslmode", "verify-ca");
        props.setProperty("sslrootcert", System.getenv("MACROLAKE_CA"));
        try (Connection c = DriverManager.getConnection(url, props)) {
            DatabaseMetaData md = c.getMetaData();
            check("PostgreSQL".equals(md.getDatabaseProductName()), "product " + md.getDatabaseProductName());

            List<String> schemas = new ArrayList<>();
            try (ResultSet rs = md.getSchemas()) {
                while (rs.next()) schemas.add(rs.getString("TABLE_SCHEM"));
            }
            check(schemas.contains("marts") && schemas.contains("staging"), "schemas " + schemas);

            List<String> tables = new ArrayList<>();
            try (ResultSet rs = md.getTables(null, "marts", "%", new String[] {"TABLE"})) {
                while (rs.next()) tables.add(rs.getString("TABLE_NAME"));
            }
            check(tables.contains("liquidity_vs_risk"), "marts tables " + tables);

            Map<String, Integer> types = new HashMap<>();
            List<String> order = new ArrayList<>();
            try (ResultSet rs = md.getColumns(null, "marts", "liquidity_vs_risk", "%")) {
                while (rs.next()) {
                    types.put(rs.getString("COLUMN_NAME"), rs.getInt("DATA_TYPE"));
                    order.add(rs.getString("COLUMN_NAME"));
                }
            }
            check(!order.isEmpty() && "date".equals(order.get(0)), "columns " + order);
            check(types.get("date") == Types.DATE, "date column JDBC type " + types.get("date"));
            check(types.get("net_liquidity_musd") == Types.DOUBLE,
                "net_liquidity_musd JDBC type " + types.get("net_liquidity_musd"));

            String sql = "SELECT date, net_liquidity_musd FROM marts.liquidity_vs_risk "
                + "WHERE date >= ? ORDER BY date LIMIT ?";
            try (PreparedStatement ps = c.prepareStatement(sql)) {
                // Run enough times for pgjdbc to switch to a server-side prepared statement.
                for (int run = 0; run < 6; run++) {
                    ps.setDate(1, Date.valueOf("2025-01-01"));
                    ps.setInt(2, 5);
                    int n = 0;
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            check(!rs.getDate(1).before(Date.valueOf("2025-01-01")), "date " + rs.getDate(1));
                            rs.getDouble(2);
                            n++;
                        }
                    }
                    check(n == 5, "prepared query run " + run + ": " + n + " rows");
                }
            }

            refused(c, "CREATE TABLE marts.x (a int)");
            refused(c, "INSERT INTO marts.co_highs SELECT * FROM marts.co_highs");
            try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT 1")) {
                check(rs.next() && rs.getInt(1) == 1, "query after refusals");
            }
            System.out.println("pgjdbc " + md.getDriverVersion()
                + ": DatabaseMetaData schemas/tables/columns, prepared query with date and int, writes refused");
        }
    }
}
