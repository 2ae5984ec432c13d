//! SQL identifier quoting: a leaf module, so the schema tool, the export
//! catalogue, the utf8mb4 conversion and test support can all use it
//! without importing one another.

/// Backtick-quote an identifier (database and table names come from
/// config or from information_schema, never from a request).
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn backticks_are_doubled() {
        assert_eq!(super::quote_ident("boinc"), "`boinc`");
        assert_eq!(super::quote_ident("a`b"), "`a``b`");
    }
}
