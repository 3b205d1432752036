//! A config's tags difference, written as what the target added and removed.

/// A tags difference as what the target added and removed (a config may carry many tags; both
/// full lists would bury the difference), at most 20 names per part.
pub fn change(source: &[String], target: &[String]) -> String {
    let part = |what: &str, names: Vec<&String>| {
        let shown: Vec<&str> = names.iter().take(20).map(|s| s.as_str()).collect();
        let more = names.len().saturating_sub(shown.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!("{what} [{}]{more}", shown.join(","))
    };
    let added: Vec<&String> = target.iter().filter(|t| !source.contains(t)).collect();
    let removed: Vec<&String> = source.iter().filter(|s| !target.contains(s)).collect();
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(part("added", added));
    }
    if !removed.is_empty() {
        parts.push(part("removed", removed));
    }
    if parts.is_empty() {
        // Same set, other order or repeats.
        parts.push("same tags, other order".into());
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tags_difference_shows_what_changed_only() {
        let v = |xs: &[&str]| xs.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        let many: Vec<String> = (0..1000).map(|i| format!("t{i}")).collect();
        let mut fewer = many.clone();
        fewer.retain(|t| t != "t7");
        let cases = [
            (
                v(&["core", "pci"]),
                v(&["core"]),
                "removed [pci]".to_owned(),
            ),
            (v(&[]), v(&["pci"]), "added [pci]".to_owned()),
            (v(&["a"]), v(&["b"]), "added [b], removed [a]".to_owned()),
            (
                v(&["a", "b"]),
                v(&["b", "a"]),
                "same tags, other order".to_owned(),
            ),
            (many.clone(), fewer, "removed [t7]".to_owned()),
            (
                v(&[]),
                many.clone(),
                format!("added [{}] and 980 more", many[..20].join(",")),
            ),
        ];
        for (source, target, want) in cases {
            assert_eq!(change(&source, &target), want);
        }
    }
}
