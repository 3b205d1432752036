//! Which server a node runs and its version, parsed from what a setting or the node says: the
//! one place the tool reads a version string (Java Nacos `major.minor.patch`, or r-nacos).

/// Parse `major.minor.patch` (a missing patch is 0; anything else: None).
#[must_use]
pub fn semver(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.split(['.', '-']).map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

/// The server a node runs, as far as its API goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// Alibaba Nacos `major.minor.patch` (1.x, 2.x or 3.x).
    Nacos(u32, u32, u32),
    /// r-nacos (its open API does not say which version).
    RNacos,
}

impl ServerKind {
    /// A version as a node reports it or a user pins it: `2.3.2`, `v2.0.4`, `3.1.0-bugfix`,
    /// `r-nacos`, `r-nacos 0.8.8`. `None` for anything else, including Nacos majors this tool
    /// does not know (0.x, 4.x and later), whose API may differ.
    #[must_use]
    pub fn parse(v: &str) -> Option<ServerKind> {
        let v = v.trim();
        let lower = v.to_ascii_lowercase();
        for prefix in ["r-nacos", "rnacos"] {
            if let Some(rest) = lower.strip_prefix(prefix) {
                let rest = rest.trim_start_matches([' ', '-', ':', 'v']);
                let ok = rest.is_empty()
                    || rest
                        .split('.')
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
                return ok.then_some(ServerKind::RNacos);
            }
        }
        let core = v.strip_prefix('v').unwrap_or(v);
        let core = core.split(['-', '+']).next().unwrap_or("");
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() != 3
            || parts
                .iter()
                .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return None;
        }
        let n = |i: usize| parts[i].parse::<u32>().ok();
        let (major, minor, patch) = (n(0)?, n(1)?, n(2)?);
        (1..=3)
            .contains(&major)
            .then_some(ServerKind::Nacos(major, minor, patch))
    }

    /// Whether it lists SDK connections (`/v2/core/loader/current`, Nacos 2.0+
    /// `ServerLoaderController`; r-nacos has no such API).
    #[must_use]
    pub fn lists_connections(self) -> bool {
        matches!(self, ServerKind::Nacos(major, _, _) if major >= 2)
    }

    /// Whether it has a cluster members API (r-nacos has none).
    #[must_use]
    pub fn lists_members(self) -> bool {
        self != ServerKind::RNacos
    }

    /// Whether it has a DB-backed config detail view with desc and tags (r-nacos answers
    /// `show=all` with the plain content: `openapi/config/api.rs` `get_config` ignores it).
    #[must_use]
    pub fn has_config_detail(self) -> bool {
        self != ServerKind::RNacos
    }

    /// Whether it exports a namespace's configs with their desc, type and appName in one answer
    /// (a zip with `.metadata.yml`): Nacos 1.4.2+ `ConfigController#exportConfigV2`
    /// (`exportV2=true`), 3.x `ConfigControllerV3#exportConfig`. r-nacos has no such export on
    /// its open API, but its list pages carry desc (`ConfigInfoDto` in `openapi/config/api.rs`).
    #[must_use]
    pub fn exports_configs(self) -> bool {
        match self {
            ServerKind::Nacos(1, minor, patch) => (minor, patch) >= (4, 2),
            ServerKind::Nacos(..) => true,
            ServerKind::RNacos => false,
        }
    }
}
