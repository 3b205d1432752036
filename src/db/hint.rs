//! What a database error means for the user: the likely cause, named in their terms.

/// What to tell the user about a server message: the likely cause, in their terms.
pub(super) fn hint(msg: &str, database: &str, lock_secs: u64) -> String {
    // The kind only: the server message, shown before the hint, already has the detail.
    if let Some(tls) = crate::tls::failure_kind(msg) {
        format!(" ({tls})")
    } else if msg.contains("insecure transport") {
        // MariaDB/MySQL `require_secure_transport=ON`: ER_SECURE_TRANSPORT_REQUIRED (3159).
        " (TLS: the server requires TLS and ssl-mode is disabled: use preferred, required, verify_ca or verify_identity)".to_owned()
    } else if msg.contains("server does not have this capability") {
        " (TLS: ssl-mode requires TLS and the server does not offer it)".to_owned()
    } else if msg.contains("Access denied") && msg.contains("to database") {
        // 1044: the login worked; this user may not use this database, or it has another name.
        format!(
            " (no access to database `{database}`: check the database name in the DSN, or grant the user access to it)"
        )
    } else if msg.contains("Unknown database") {
        format!(" (no database named `{database}` on this server)")
    } else if msg.contains("Access denied") {
        " (wrong user or password)".to_owned()
    } else if msg.contains("Lock wait timeout") {
        format!(" (a table is locked by another session: waited lock_wait_timeout = {lock_secs} s)")
    } else if msg.contains("max_statement_time") || msg.contains("maximum statement execution time")
    {
        " (the statement reached the run deadline)".to_owned()
    } else if msg.contains("onnection refused") || msg.contains("timed out") {
        " (database unreachable)".to_owned()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::hint;

    #[test]
    fn access_denied_to_a_database_names_it_instead_of_blaming_the_password() {
        let h = hint(
            "ERROR 1044 (42000): Access denied for user 'nacos'@'%' to database 'nacos_x'",
            "nacos_x",
            10,
        );
        assert!(h.contains("`nacos_x`") && !h.contains("password"), "{h}");
        let h = hint(
            "ERROR 1045 (28000): Access denied for user 'nacos'@'localhost' (using password: YES)",
            "nacos",
            10,
        );
        assert!(h.contains("wrong user or password"), "{h}");
        let h = hint(
            "ERROR 1049 (42000): Unknown database 'nacos_x'",
            "nacos_x",
            10,
        );
        assert!(h.contains("no database named `nacos_x`"), "{h}");
        let h = hint(
            "ERROR 1205 (HY000): Lock wait timeout exceeded; try restarting transaction",
            "nacos",
            7,
        );
        assert!(h.contains("locked") && h.contains("7 s"), "{h}");
    }
}
