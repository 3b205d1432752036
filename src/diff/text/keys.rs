//! Which keys name a secret: judged by the last word of their last segment (see [`is_secret_key`]).

/// Last words that make a key secret (`db_password`, `clientSecret`, `X-Api-Key`, `basic-auth`).
const SECRET_WORDS: [&str; 17] = [
    "password",
    "passwords",
    "passwd",
    "pwd",
    "pass",
    "passphrase",
    "secret",
    "token",
    "credential",
    "credentials",
    "creds",
    "auth",
    "authorization",
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
];

/// Endings that make a one-word key secret (`DBPASSWORD`, `authtoken`), but not `passwordless`.
const SECRET_SUFFIXES: [&str; 11] = [
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "credentials",
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
];

/// Words before `key` that make it a name rather than a secret (`publicKey`, `partition-key`).
const NAME_KEY_QUALIFIERS: [&str; 22] = [
    "public",
    "primary",
    "foreign",
    "partition",
    "sort",
    "routing",
    "cache",
    "hash",
    "shard",
    "sharding",
    "unique",
    "lookup",
    "row",
    "map",
    "group",
    "message",
    "hot",
    "i18n",
    "idempotency",
    "dedup",
    "index",
    "composite",
];

/// Words that make a plural (`max-tokens`, `num_keys`) a count rather than a list of secrets.
const COUNT_WORDS: [&str; 6] = ["max", "min", "num", "count", "total", "limit"];

/// Words of one key segment, lower-cased: split at `_`, `-`, spaces and camel-case humps
/// (`APIKey` → `api`, `key`; `MYSQL_ROOT_PASSWORD` → `mysql`, `root`, `password`).
fn words(seg: &str) -> Vec<String> {
    let chars: Vec<char> = seg.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if matches!(c, '_' | '-' | ' ') {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let hump = c.is_uppercase()
            && i > 0
            && (chars[i - 1].is_lowercase()
                || (chars[i - 1].is_uppercase()
                    && chars.get(i + 1).is_some_and(|n| n.is_lowercase())));
        if hump && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Whether one key segment names a secret.
fn secret_segment(seg: &str) -> bool {
    let w = words(seg);
    let Some(last) = w.last() else { return false };
    if w.len() == 1 {
        return SECRET_WORDS.contains(&last.as_str())
            || last == "key"
            || SECRET_SUFFIXES.iter().any(|s| last.ends_with(s));
    }
    let prev = w[w.len() - 2].as_str();
    match last.as_str() {
        "key" => !NAME_KEY_QUALIFIERS.contains(&prev),
        "keys" | "tokens" | "secrets" => !w.iter().any(|x| COUNT_WORDS.contains(&x.as_str())),
        l => SECRET_WORDS.contains(&l) || SECRET_SUFFIXES.iter().any(|s| l.ends_with(s)),
    }
}

/// Whether a key name looks like it holds a secret: its last segment (after `.`, `/`, `:`, `[`)
/// does, by its last word; a generic last segment (`value`) defers to the one before it, so
/// Nacos's `identity.value` counts. Leading dashes (`--db-password`) and quotes are ignored.
#[must_use]
pub fn is_secret_key(key: &str) -> bool {
    let key = key.trim_matches(['"', '\'', ' ']).trim_start_matches('-');
    let segs: Vec<&str> = key
        .split(['.', '/', ':', '[', ']', '$', '{', '}'])
        .filter(|s| !s.is_empty() && !s.chars().all(|c| c.is_ascii_digit()))
        .collect();
    match segs.as_slice() {
        // `key` alone names something (`- key: env`); `jwt.key` holds one.
        [] => false,
        [only] if only.eq_ignore_ascii_case("key") => false,
        [.., prev, last] if matches!(last.to_ascii_lowercase().as_str(), "value" | "val") => {
            secret_segment(prev) || words(prev).last().is_some_and(|w| w == "identity")
        }
        [.., last] => secret_segment(last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_judged_by_their_last_word() {
        for k in [
            "MYSQL_ROOT_PASSWORD",
            "dbPassword",
            "X-Api-Key",
            "client_secret",
            "identity.value",
            "jwt.key",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "passwordPolicy.minLength",
            "keyboard",
            "tokenizer.model",
            "max_tokens",
            "publicKey",
            "key",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }
}
