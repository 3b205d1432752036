//! Pure parsers of node answers, one per endpoint and dialect: text in, model values out, and an
//! answer of any other shape than the one that version documents is an error saying what was
//! wrong, never an empty list. Nothing here does I/O, so every shape is tested on answers
//! captured from real servers (`fixtures/answers/`).

mod config;
mod export;
pub mod naming;
pub mod shape;
#[cfg(test)]
mod tests;

pub use config::{
    config_detail, config_ids, config_item, config_page, config_row, listener, listening_configs,
    namespaces, served_md5, CANARY_DATA_ID,
};
pub use export::export_zip;
pub use naming::{
    connections, instance_page, members, service, service_detail, service_page,
    service_page_with_instances,
};

use super::dialect::{Dialect, ServerKind};
use serde_json::Value;
use shape::{object, Shape};

/// One page of a listing: the server's total and this page's items.
#[derive(Debug)]
pub struct Page<T> {
    /// `totalCount` / `count` as the server gives it.
    pub total: u64,
    /// This page's items.
    pub items: Vec<T>,
    /// (r-nacos config pages) some item had no `desc` field: the desc was not listed.
    pub without_desc: bool,
}

/// The most items one listing may claim; a node claiming more is not believed (reading it would
/// take unbounded time and memory).
pub const MAX_LISTED: u64 = 10_000_000;

/// Check a page against the server's page size and total.
pub fn check_page(total: u64, items: usize, page_size: usize) -> Shape<()> {
    if total > MAX_LISTED {
        return Err(format!(
            "the total of {total} is beyond what nacos-drift reads ({MAX_LISTED} per listing)"
        ));
    }
    if items > page_size {
        return Err(format!(
            "a page of {items} items, more than the {page_size} asked for"
        ));
    }
    if items as u64 > total {
        return Err(format!(
            "a page of {items} items, more than the total of {total} it claims"
        ));
    }
    Ok(())
}

/// The answer as JSON.
pub fn json(body: &str) -> Shape<Value> {
    if body.trim().is_empty() {
        return Err("empty answer where JSON was expected".into());
    }
    serde_json::from_str(body).map_err(|e| {
        let start = body.trim_start();
        if start.starts_with('<') {
            "answer is HTML or XML, not JSON".to_owned()
        } else {
            format!("answer is not valid JSON ({e}); truncated body?")
        }
    })
}

/// The `data` of a v3 admin answer (`Result`: `{"code": 0, "message": "success", "data": ...}`).
pub fn envelope(body: &str) -> Shape<Value> {
    let v = json(body)?;
    let o = object(&v, "")?;
    let code = o.int("code")?;
    if code != 0 {
        return Err(format!(
            "v3 answer with code {code} (not 0): {}",
            shape::snippet(o.opt_str("message").unwrap_or(""))
        ));
    }
    if !o.has("data") {
        return Err("`data` is missing".into());
    }
    Ok(v.get("data").cloned().unwrap_or(Value::Null))
}

/// The answer of a dialect: v3 in its envelope, the others plain.
pub fn answer(dialect: Dialect, body: &str) -> Shape<Value> {
    match dialect {
        Dialect::V3 => envelope(body),
        Dialect::V1 | Dialect::RNacos => json(body),
    }
}

/// Token and its time to live (seconds) from a login answer (Nacos `UserController#login`,
/// r-nacos `openapi/auth.rs` `LoginResult`: both `{"accessToken", "tokenTtl", ...}`).
pub fn login(body: &str) -> Shape<(String, u64)> {
    let v = json(body)?;
    let o = object(&v, "")?;
    Ok((o.str("accessToken")?.to_owned(), o.count("tokenTtl")?))
}

/// The version in a server state answer (v1 plain, v3 the envelope's `data`) and what server
/// it names; a version this tool does not know is an error.
pub fn state(state: &Value) -> Shape<(String, ServerKind)> {
    let o = object(state, "")?;
    let version = o.str("version")?;
    let kind = ServerKind::parse(version).ok_or_else(|| {
        format!(
            "the server says it is version `{}`, which nacos-drift does not know",
            shape::snippet(version)
        )
    })?;
    Ok((version.to_owned(), kind))
}

/// Whether an answer of r-nacos's health path is r-nacos's (`success`).
#[must_use]
pub fn is_rnacos_health(status: u16, body: &str) -> bool {
    status == 200 && body.trim() == "success"
}
