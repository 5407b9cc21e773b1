//! Table names: a zone (SQL schema) and a name within it.

use std::fmt;

/// The three table zones, which are also the SQL schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Zone {
    /// Connector output.
    Staging,
    /// Model output.
    Marts,
    /// Run history, watermarks, locks.
    Meta,
    /// Reference data committed with the models (`sql/seeds/*.csv`), not stored in the lake.
    Seeds,
}

impl Zone {
    /// All zones, in display order.
    pub const ALL: [Zone; 3] = [Zone::Staging, Zone::Marts, Zone::Meta];

    /// Folder and SQL schema name.
    pub fn as_str(self) -> &'static str {
        match self {
            Zone::Staging => "staging",
            Zone::Marts => "marts",
            Zone::Meta => "meta",
            Zone::Seeds => "seeds",
        }
    }
}

/// A table's name: zone plus table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    /// Its zone (SQL schema).
    pub zone: Zone,
    /// Its name within the zone.
    pub name: String,
}

impl TableName {
    /// A staging table.
    pub fn staging(name: &str) -> Self {
        Self {
            zone: Zone::Staging,
            name: name.to_string(),
        }
    }
    /// A marts table.
    pub fn marts(name: &str) -> Self {
        Self {
            zone: Zone::Marts,
            name: name.to_string(),
        }
    }
    /// A meta table.
    pub fn meta(name: &str) -> Self {
        Self {
            zone: Zone::Meta,
            name: name.to_string(),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.zone.as_str(), self.name)
    }
}
