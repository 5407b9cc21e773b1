//! What a client may `SET`, and where it goes: the connection, never the shared engine.
//!
//! Drivers set a handful of session variables at connect time (pgjdbc `extra_float_digits` and
//! `application_name`, psqlODBC `DateStyle`, psycopg `TimeZone`, …). Those on [`ALLOWED`] are
//! kept in the connection's own metadata (so one client's `SET TimeZone` is not another's) and
//! acknowledged; everything else — DataFusion's own settings (`datafusion.*`, which would change
//! the engine for every client), `ROLE`, `SESSION AUTHORIZATION`, `default_transaction_read_only`
//! — is refused with 42501 by the guard. `RESET` and `DISCARD ALL` drop what the connection set.

use async_trait::async_trait;
use datafusion::common::{DFSchema, ParamValues};
use datafusion::logical_expr::{EmptyRelation, LogicalPlan};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{DiscardObject, Expr, Reset, Set, Statement, Value};
use datafusion_postgres::QueryHook;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::pgwire;
use pgwire::api::ClientInfo;
use pgwire::api::results::{Response, Tag};
use pgwire::error::PgWireResult;
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::startup::ParameterStatus;

/// Variables a client may set (lower case), with the name PostgreSQL reports them under when
/// it sends a `ParameterStatus` (`None`: not reported).
pub const ALLOWED: &[(&str, Option<&str>)] = &[
    ("statement_timeout", None),
    ("search_path", Some("search_path")),
    ("client_encoding", Some("client_encoding")),
    ("datestyle", Some("DateStyle")),
    ("timezone", Some("TimeZone")),
    ("application_name", Some("application_name")),
    ("extra_float_digits", Some("extra_float_digits")),
    ("bytea_output", None),
    ("intervalstyle", Some("IntervalStyle")),
    (
        "standard_conforming_strings",
        Some("standard_conforming_strings"),
    ),
    ("client_min_messages", None),
    ("lock_timeout", None),
    ("idle_in_transaction_session_timeout", None),
    ("default_transaction_isolation", None),
    ("lc_messages", None),
    ("lc_monetary", None),
    ("lc_numeric", None),
    ("lc_time", None),
];

/// What `SHOW` answers for a setting the connection has not set: PostgreSQL's defaults for this
/// server (datafusion-postgres would answer an empty string; Metabase reads its default time zone
/// with `SHOW timezone`).
pub const DEFAULTS: &[(&str, &str)] = &[
    ("timezone", "UTC"),
    ("client_encoding", "UTF8"),
    ("standard_conforming_strings", "on"),
    ("lc_messages", "C"),
    ("lc_monetary", "C"),
    ("lc_numeric", "C"),
    ("lc_time", "C"),
    ("client_min_messages", "notice"),
    ("default_transaction_isolation", "read committed"),
    ("lock_timeout", "0"),
    ("idle_in_transaction_session_timeout", "0"),
];

/// Before datafusion-postgres answers `SHOW <name>` from the connection's settings, puts the
/// default there when the connection set none.
fn default_for_show(statement: &Statement, client: &mut dyn HookClient) {
    let Statement::ShowVariable { variable } = statement else {
        return;
    };
    let [name] = variable.as_slice() else {
        return;
    };
    let name = name.value.to_lowercase();
    if let Some((_, value)) = DEFAULTS.iter().find(|(n, _)| *n == name)
        && !client.metadata().contains_key(&name)
    {
        client.metadata_mut().insert(name, (*value).to_string());
    }
}

/// Where `statement_timeout` is kept (read by the handler and by datafusion-postgres).
const TIMEOUT_KEY: &str = "statement_timeout_ms";

fn allowed(var: &str) -> bool {
    ALLOWED.iter().any(|(name, _)| *name == var)
}

/// `Err(why)` when `set` changes anything but an allowed session variable.
pub fn check_set(set: &Set) -> Result<(), String> {
    let refuse = |what: &str| {
        Err(format!(
            "permission denied to set parameter \"{what}\": this server lets clients set only {}",
            ALLOWED
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    };
    match set {
        Set::SingleAssignment { variable, .. } => {
            let var = variable.to_string().to_lowercase();
            if allowed(&var) { Ok(()) } else { refuse(&var) }
        }
        Set::MultipleAssignments { assignments } => assignments.iter().try_for_each(|a| {
            let var = a.name.to_string().to_lowercase();
            if allowed(&var) { Ok(()) } else { refuse(&var) }
        }),
        Set::ParenthesizedAssignments { variables, .. } => variables.iter().try_for_each(|v| {
            let var = v.to_string().to_lowercase();
            if allowed(&var) { Ok(()) } else { refuse(&var) }
        }),
        // Transaction characteristics change nothing on a server that never writes.
        Set::SetTimeZone { .. }
        | Set::SetNames { .. }
        | Set::SetNamesDefault {}
        | Set::SetTransaction { .. } => Ok(()),
        Set::SetRole { .. } => refuse("role"),
        Set::SetSessionAuthorization(_) => refuse("session_authorization"),
        Set::SetSessionParam(_) => refuse("a session parameter"),
    }
}

/// `Err(why)` when `reset` names a variable a client may not set.
pub fn check_reset(reset: &Reset) -> Result<(), String> {
    match reset {
        Reset::ALL => Ok(()),
        Reset::ConfigurationParameter(name) => {
            let var = name.to_string().to_lowercase();
            if allowed(&var) {
                Ok(())
            } else {
                Err(format!("permission denied to reset parameter \"{var}\""))
            }
        }
    }
}

/// A value as the client wrote it, without quotes.
fn text(e: &Expr) -> String {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(i) => i.value.clone(),
        other => other.to_string(),
    }
}

/// PostgreSQL's `statement_timeout` syntax: a number of milliseconds or a number with a unit.
fn timeout_ms(value: &str) -> Option<u64> {
    let v = value.trim().to_ascii_lowercase();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: u64 = n.parse().ok()?;
    let factor = match unit.trim() {
        "" | "ms" => 1,
        "s" => 1000,
        "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some(n.saturating_mul(factor))
}

fn error(code: &str, message: String) -> pgwire::error::PgWireError {
    super::pg_error("ERROR", code, message)
}

/// Stores `var = value` in the connection's metadata.
async fn assign(client: &mut dyn HookClient, var: &str, value: String) -> PgWireResult<()> {
    match var {
        "statement_timeout" => {
            let ms = timeout_ms(&value).ok_or_else(|| {
                error(
                    "22023",
                    format!("invalid value for parameter \"statement_timeout\": \"{value}\""),
                )
            })?;
            if ms == 0 {
                client.metadata_mut().remove(TIMEOUT_KEY);
            } else {
                client
                    .metadata_mut()
                    .insert(TIMEOUT_KEY.into(), ms.to_string());
            }
            return Ok(());
        }
        "client_encoding"
            if !matches!(
                value.to_ascii_uppercase().replace('-', "").as_str(),
                "UTF8" | "UNICODE"
            ) =>
        {
            return Err(error(
                "0A000",
                format!("client_encoding {value} is not supported: this server speaks UTF8"),
            ));
        }
        _ => {}
    }
    client.metadata_mut().insert(var.into(), value.clone());
    if let Some((_, Some(reported))) = ALLOWED.iter().find(|(n, _)| *n == var) {
        client
            .send_message(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                (*reported).into(),
                value,
            )))
            .await?;
    }
    Ok(())
}

fn forget(client: &mut dyn HookClient, var: &str) {
    let key = if var == "statement_timeout" {
        TIMEOUT_KEY
    } else {
        var
    };
    client.metadata_mut().remove(key);
}

/// Applies an allowed `SET`/`RESET`/`DISCARD` to the connection (the guard refused the rest).
async fn apply(statement: &Statement, client: &mut dyn HookClient) -> Option<PgWireResult<Tag>> {
    let result = match statement {
        Statement::Set(set) => {
            let assignments: Vec<(String, String)> = match set {
                Set::SingleAssignment {
                    variable, values, ..
                } => vec![(
                    variable.to_string().to_lowercase(),
                    values.iter().map(text).collect::<Vec<_>>().join(", "),
                )],
                Set::MultipleAssignments { assignments } => assignments
                    .iter()
                    .map(|a| (a.name.to_string().to_lowercase(), text(&a.value)))
                    .collect(),
                Set::SetTimeZone { value, .. } => vec![("timezone".into(), text(value))],
                Set::SetNames { charset_name, .. } => {
                    vec![("client_encoding".into(), charset_name.value.clone())]
                }
                Set::SetNamesDefault {} => vec![("client_encoding".into(), "UTF8".into())],
                _ => vec![],
            };
            let mut outcome = Ok(Tag::new("SET"));
            for (var, value) in assignments {
                if let Err(e) = assign(client, &var, value).await {
                    outcome = Err(e);
                    break;
                }
            }
            outcome
        }
        Statement::Reset(r) => {
            match &r.reset {
                Reset::ALL => ALLOWED.iter().for_each(|(n, _)| forget(client, n)),
                Reset::ConfigurationParameter(n) => forget(client, &n.to_string().to_lowercase()),
            }
            Ok(Tag::new("RESET"))
        }
        Statement::Discard {
            object_type: DiscardObject::ALL,
        } => {
            ALLOWED.iter().for_each(|(n, _)| forget(client, n));
            Ok(Tag::new("DISCARD ALL"))
        }
        Statement::Discard { .. } => Ok(Tag::new("DISCARD")),
        _ => return None,
    };
    Some(result)
}

fn is_setting(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::Set(_) | Statement::Reset(_) | Statement::Discard { .. }
    )
}

/// The hook that applies settings per connection (placed before datafusion-postgres' own
/// `SET`/`SHOW` hook, which would pass unknown variables to the shared engine).
#[derive(Debug)]
pub struct SessionSettings;

#[async_trait]
impl QueryHook for SessionSettings {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        default_for_show(statement, client);
        Some(apply(statement, client).await?.map(Response::Execution))
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _: &SessionContext,
        _: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        is_setting(statement).then(|| {
            Ok(LogicalPlan::EmptyRelation(EmptyRelation {
                produce_one_row: false,
                schema: std::sync::Arc::new(DFSchema::empty()),
            }))
        })
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _: &LogicalPlan,
        _: &ParamValues,
        _: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        default_for_show(statement, client);
        Some(apply(statement, client).await?.map(Response::Execution))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn set_check(sql: &str) -> Result<(), String> {
        match Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0)
        {
            Statement::Set(s) => check_set(&s),
            Statement::Reset(r) => check_reset(&r.reset),
            other => panic!("{sql}: not a SET: {other:?}"),
        }
    }

    #[test]
    fn allow_list() {
        for sql in [
            "SET statement_timeout = '5s'",
            "SET search_path = public",
            "SET client_encoding = 'UTF8'",
            "SET DateStyle = 'ISO'",
            "SET TimeZone = 'UTC'",
            "SET TIME ZONE 'America/New_York'",
            "SET application_name = 'Metabase'",
            "SET extra_float_digits = 3",
            "SET SESSION statement_timeout TO 1000",
            "SET NAMES 'UTF8'",
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
            "RESET ALL",
            "RESET statement_timeout",
        ] {
            assert_eq!(set_check(sql), Ok(()), "{sql}");
        }
        for sql in [
            "SET datafusion.execution.target_partitions = 1",
            "SET datafusion.catalog.information_schema = false",
            "SET work_mem = '1GB'",
            "SET ROLE postgres",
            "SET SESSION AUTHORIZATION postgres",
            "SET default_transaction_read_only = off",
            "SET session_replication_role = replica",
            "RESET datafusion.execution.batch_size",
        ] {
            let e = set_check(sql).expect_err(sql);
            assert!(e.starts_with("permission denied"), "{sql}: {e}");
        }
    }

    #[test]
    fn statement_timeout_units() {
        assert_eq!(timeout_ms("5000"), Some(5000));
        assert_eq!(timeout_ms("5s"), Some(5000));
        assert_eq!(timeout_ms(" 250ms"), Some(250));
        assert_eq!(timeout_ms("2min"), Some(120_000));
        assert_eq!(timeout_ms("1h"), Some(3_600_000));
        assert_eq!(timeout_ms("0"), Some(0));
        assert_eq!(timeout_ms("soon"), None);
        assert_eq!(timeout_ms("5 parsecs"), None);
    }
}
