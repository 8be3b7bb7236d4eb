//! Realistic, deterministic synthetic audit events for tests and benchmarks.
//!
//! What this module owns: [`EventGenerator`], which fabricates audit events
//! shaped like the ones the engine stores (action, actor, role, environment,
//! request with a nested JSON payload, response, optional error), with skewed
//! ("Zipf-like") frequencies, a few documented rare needles
//! ([`RARE_ACTOR_ID`], [`RARE_PATH`]) for selective-query tests, slightly
//! out-of-order ("late") timestamps, and optional ULID ids. The same
//! generator feeds unit tests and the 1M/10M-event benchmark data sets, either
//! as [`serde_json::Value`]s or directly as NDJSON bytes.
//!
//! What it must never do:
//! - It is never used on real data paths (ingest, storage, query, recovery):
//!   it only fabricates test and benchmark data.
//! - It is never nondeterministic: the output depends only on [`GenConfig`].
//!   No clocks, no OS or thread-local randomness, no hash-map iteration order,
//!   and no platform-dependent math (`powf`, `ln`, ...). All sampling is
//!   integer arithmetic on the raw 64-bit output of a seeded
//!   `fastrand::Rng`, so the same seed and config give byte-identical output
//!   on every run and platform (for a given fastrand 2.x version).
//!
//! Byte-level stability: objects are always emitted with their keys in sorted
//! order, so [`EventGenerator::write_ndjson_line`] produces exactly the bytes
//! of `serde_json::to_vec(&event)` for the event [`EventGenerator::next_event`]
//! would have returned, whether or not serde_json's `preserve_order` feature
//! is enabled.

use std::sync::OnceLock;

use serde_json::{Map, Value};
use time::OffsetDateTime;

/// The most frequent action name (about 10% of events).
pub const COMMON_ACTION: &str = "items.update";

/// An actor (type `"user"`) injected with probability exactly 1/100,000 per
/// event. Regular actor ids are all digits, so this id never occurs otherwise.
pub const RARE_ACTOR_ID: &str = "rare-7";

/// A request path injected with probability exactly 1/100,000 per event
/// (always with action `items.publish`, method `PUT`). Regular item ids are
/// never 239408, so this path never occurs otherwise.
pub const RARE_PATH: &str = "/items/239408/publish";

/// Name (email) of the [`RARE_ACTOR_ID`] actor.
const RARE_ACTOR_NAME: &str = "rare.actor@example.com";
const RARE_ITEM_ID: u64 = 239_408;
/// Rare events happen when `below(RARE_ONE_IN) == 0`.
const RARE_ONE_IN: u64 = 100_000;
/// Error responses: `ERROR_PER_MILLE / 1000` of events.
const ERROR_PER_MILLE: u64 = 30;

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/// Configuration of an [`EventGenerator`].
#[derive(Debug, Clone, PartialEq)]
pub struct GenConfig {
    /// Seed of the random stream. Same seed + same config => same bytes.
    pub seed: u64,
    /// `occurred_at` of the first (on-time) event.
    pub start: OffsetDateTime,
    /// Rate of the simulated stream: on-time event `i` occurs in
    /// `[start + i/eps, start + (i+1)/eps)` (microsecond resolution).
    /// Non-finite or non-positive values fall back to 1000.
    pub events_per_second: f64,
    /// Fraction (0..=1) of events that are "late": their `occurred_at` lies
    /// up to `late_max_secs` before the newest `occurred_at` seen so far.
    pub late_fraction: f64,
    /// Maximum lateness in seconds (values <= 0 disable late events).
    pub late_max_secs: i64,
    /// Include a top-level `"id"` ULID whose timestamp is `occurred_at` (ms)
    /// and whose random part comes from the seeded stream. The random part is
    /// drawn even when `false`, so toggling ids does not change other fields.
    pub with_ids: bool,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 42,
            start: time::macros::datetime!(2026-01-01 0:00 UTC),
            events_per_second: 1000.0,
            late_fraction: 0.01,
            late_max_secs: 3600,
            with_ids: false,
        }
    }
}

// ---------------------------------------------------------------------------
// Deterministic randomness helpers
// ---------------------------------------------------------------------------

/// Thin wrapper that only uses the raw 64-bit output of fastrand's WyRand,
/// so results do not depend on fastrand's range-reduction details or on the
/// platform's pointer width.
struct Rand(fastrand::Rng);

impl Rand {
    #[inline]
    fn next(&mut self) -> u64 {
        self.0.u64(..)
    }

    /// Uniform-ish integer in `0..n` (multiply-high; bias < n / 2^64).
    /// Returns 0 when `n == 0`.
    #[inline]
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Integer in `lo..=hi` (requires `lo <= hi`; returns `lo` otherwise).
    #[inline]
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo).saturating_add(1))
    }

    /// True with probability `num / den`.
    #[inline]
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// Uniform f64 in `[0, 1)` built from 53 random bits (exact, portable).
    #[inline]
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    #[inline]
    fn pick(&mut self, items: &[&'static str]) -> &'static str {
        let i = self.below(items.len() as u64) as usize;
        items.get(i).copied().unwrap_or("")
    }

    /// Log-uniform integer in `0..2^max_bits`: a cheap, integer-only
    /// approximation of a Zipf(s=1) distribution (each power-of-two bucket
    /// is equally likely).
    #[inline]
    fn log_uniform(&mut self, max_bits: u32) -> u64 {
        let b = self.below(u64::from(max_bits) + 1) as u32;
        if b == 0 {
            0
        } else {
            let half = 1u64 << (b - 1);
            half + self.below(half)
        }
    }
}

/// SplitMix64 finalizer: a fixed bijective hash used to derive stable
/// per-entity attributes (names, roles, user agents) from ranks.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `items[i % items.len()]` without panicking indexing; `fallback` only for
/// an empty table. The reduction is done in u64, so results do not depend on
/// the platform's pointer width.
#[inline]
fn cyc<T: Copy>(items: &[T], i: u64, fallback: T) -> T {
    let len = items.len() as u64;
    if len == 0 {
        return fallback;
    }
    items.get((i % len) as usize).copied().unwrap_or(fallback)
}

/// Cumulative integer weights, sampled with binary search.
struct Weighted {
    cum: Vec<u64>,
}

impl Weighted {
    fn new(weights: impl IntoIterator<Item = u64>) -> Self {
        let mut acc = 0u64;
        let cum = weights
            .into_iter()
            .map(|w| {
                acc = acc.saturating_add(w);
                acc
            })
            .collect();
        Weighted { cum }
    }

    /// Zipf-Mandelbrot weights `2^40 / (rank + q)` for ranks `1..=n`
    /// (integer-only, hence portable).
    fn zipf(n: u64, q: u64) -> Self {
        Self::new((1..=n).map(|k| (1u64 << 40) / (k + q)))
    }

    /// Index in `0..len` (0 for an empty table).
    #[inline]
    fn sample(&self, r: &mut Rand) -> usize {
        let total = self.cum.last().copied().unwrap_or(0);
        let x = r.below(total);
        let i = self.cum.partition_point(|&c| c <= x);
        i.min(self.cum.len().saturating_sub(1))
    }
}

// ---------------------------------------------------------------------------
// Static vocabulary
// ---------------------------------------------------------------------------

/// Which kind of id appears in the request path.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    None,
    Item,
    Upload,
    ItemType,
    Env,
    Misc,
}

/// Shape of the request payload.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Body {
    ItemWrite,
    ItemOp,
    BulkItems,
    Upload,
    Delete,
    Login,
    Logout,
    Role,
    Token,
    Env,
    Job,
    Query,
    Generic,
}

struct ActionSpec {
    name: &'static str,
    method: &'static str,
    prefix: &'static str,
    suffix: &'static str,
    target: Target,
    body: Body,
    /// JSON:API resource type used in payloads.
    resource: &'static str,
    /// Human description prefix.
    describe: &'static str,
    /// HTTP status on success.
    ok_status: u64,
}

#[allow(clippy::too_many_arguments)]
const fn act(
    name: &'static str,
    method: &'static str,
    prefix: &'static str,
    target: Target,
    suffix: &'static str,
    body: Body,
    resource: &'static str,
    describe: &'static str,
    ok_status: u64,
) -> ActionSpec {
    ActionSpec {
        name,
        method,
        prefix,
        suffix,
        target,
        body,
        resource,
        describe,
        ok_status,
    }
}

/// Actions in decreasing popularity; weights are `2^40 / (rank + 3)`, which
/// gives the first one (items.update) about 9.9% of events.
#[rustfmt::skip]
const ACTIONS: [ActionSpec; 40] = [
    act("items.update", "PUT", "/items/", Target::Item, "", Body::ItemWrite, "item", "Updated record", 200),
    act("items.create", "POST", "/items", Target::None, "", Body::ItemWrite, "item", "Created record", 201),
    act("uploads.create", "POST", "/uploads", Target::None, "", Body::Upload, "upload", "Uploaded asset", 201),
    act("items.publish", "PUT", "/items/", Target::Item, "/publish", Body::ItemOp, "item", "Published record", 200),
    act("users.login", "POST", "/session", Target::None, "", Body::Login, "session", "Signed in", 201),
    act("items.destroy", "DELETE", "/items/", Target::Item, "", Body::Delete, "item", "Deleted record", 200),
    act("items.unpublish", "PUT", "/items/", Target::Item, "/unpublish", Body::ItemOp, "item", "Unpublished record", 200),
    act("uploads.update", "PUT", "/uploads/", Target::Upload, "", Body::Upload, "upload", "Updated asset", 200),
    act("items.duplicate", "POST", "/items/", Target::Item, "/duplicate", Body::ItemOp, "item", "Duplicated record", 201),
    act("uploads.destroy", "DELETE", "/uploads/", Target::Upload, "", Body::Delete, "upload", "Deleted asset", 200),
    act("items.bulk_publish", "POST", "/items/bulk/publish", Target::None, "", Body::BulkItems, "item_bulk_publish_operation", "Bulk-published records", 202),
    act("exports.download", "GET", "/exports/", Target::Misc, "/download", Body::Query, "export", "Downloaded export", 200),
    act("item_types.update", "PUT", "/item-types/", Target::ItemType, "", Body::Generic, "item_type", "Updated model", 200),
    act("fields.update", "PUT", "/fields/", Target::Misc, "", Body::Generic, "field", "Updated field", 200),
    act("fields.create", "POST", "/item-types/", Target::ItemType, "/fields", Body::Generic, "field", "Created field", 201),
    act("api_tokens.create", "POST", "/access_tokens", Target::None, "", Body::Token, "access_token", "Created API token", 201),
    act("users.logout", "DELETE", "/session", Target::None, "", Body::Logout, "session", "Signed out", 200),
    act("roles.update", "PUT", "/roles/", Target::Misc, "", Body::Role, "role", "Updated role", 200),
    act("environments.fork", "POST", "/environments/", Target::Env, "/fork", Body::Env, "environment", "Forked environment", 202),
    act("backups.create", "POST", "/backups", Target::None, "", Body::Job, "backup", "Started backup", 202),
    act("items.restore_version", "POST", "/versions/", Target::Misc, "/restore", Body::ItemOp, "item_version", "Restored record version", 202),
    act("webhooks.update", "PUT", "/webhooks/", Target::Misc, "", Body::Generic, "webhook", "Updated webhook", 200),
    act("upload_collections.create", "POST", "/upload-collections", Target::None, "", Body::Generic, "upload_collection", "Created asset folder", 201),
    act("item_types.create", "POST", "/item-types", Target::None, "", Body::Generic, "item_type", "Created model", 201),
    act("fields.destroy", "DELETE", "/fields/", Target::Misc, "", Body::Delete, "field", "Deleted field", 200),
    act("users.invite", "POST", "/site-invitations", Target::None, "", Body::Generic, "site_invitation", "Invited user", 201),
    act("scheduled_publications.create", "POST", "/items/", Target::Item, "/scheduled-publication", Body::ItemOp, "scheduled_publication", "Scheduled publication", 201),
    act("workflows.update", "PUT", "/workflows/", Target::Misc, "", Body::Generic, "workflow", "Updated workflow", 200),
    act("plugins.install", "POST", "/plugins", Target::None, "", Body::Generic, "plugin", "Installed plugin", 201),
    act("menu_items.update", "PUT", "/menu-items/", Target::Misc, "", Body::Generic, "menu_item", "Updated menu item", 200),
    act("roles.create", "POST", "/roles", Target::None, "", Body::Role, "role", "Created role", 201),
    act("api_tokens.rotate", "POST", "/access_tokens/", Target::Misc, "/regenerate_token", Body::Token, "access_token", "Rotated API token", 200),
    act("environments.promote", "PUT", "/environments/", Target::Env, "/promote", Body::Env, "environment", "Promoted environment", 200),
    act("site.update", "PUT", "/site", Target::None, "", Body::Generic, "site", "Updated project settings", 200),
    act("webhooks.create", "POST", "/webhooks", Target::None, "", Body::Generic, "webhook", "Created webhook", 201),
    act("users.destroy", "DELETE", "/users/", Target::Misc, "", Body::Delete, "user", "Removed user", 200),
    act("environments.destroy", "DELETE", "/environments/", Target::Env, "", Body::Delete, "environment", "Deleted environment", 202),
    act("api_tokens.destroy", "DELETE", "/access_tokens/", Target::Misc, "", Body::Delete, "access_token", "Deleted API token", 200),
    act("backups.restore", "POST", "/backups/", Target::Misc, "/restore", Body::Job, "backup", "Restored backup", 202),
    act("sso_settings.update", "PUT", "/sso-settings", Target::None, "", Body::Generic, "sso_settings", "Updated SSO settings", 200),
];

/// Index of `items.publish` in [`ACTIONS`] (used for [`RARE_PATH`] events).
const PUBLISH_ACTION: usize = 3;

const ACTOR_USER: usize = 0;
const ACTOR_ACCOUNT: usize = 1;
const ACTOR_TOKEN: usize = 2;
const ACTOR_SYSTEM: usize = 3;
const ACTOR_TYPES: [&str; 4] = ["user", "account", "access_token", "system"];
/// Per-mille shares of actor types.
const ACTOR_TYPE_WEIGHTS: [u64; 4] = [700, 150, 100, 50];
/// Per actor type: (population size, Zipf-Mandelbrot flattening `q`).
/// Populations total 200,000.
const ACTOR_POPULATION: [(u64, u64); 4] = [(160_000, 10), (24_000, 5), (15_000, 5), (1_000, 1)];

/// Digit ids: disjoint ranges per type, scrambled by a bijection so that
/// popular actors are not consecutive numbers.
fn actor_numeric_id(kind: usize, rank: u64) -> u64 {
    match kind {
        ACTOR_USER => 1_000_000 + (rank * 7_368_787) % 8_000_000,
        ACTOR_ACCOUNT => 100_000 + (rank * 7_919) % 800_000,
        ACTOR_TOKEN => 10_000 + (rank * 613) % 80_000,
        _ => 1 + rank % 1_000,
    }
}

/// (id, name) of roles; users get one of the first seven.
const ROLES: [(&str, &str); 9] = [
    ("1", "Admin"),
    ("2", "Developer"),
    ("3", "Editor"),
    ("4", "Contributor"),
    ("5", "Translator"),
    ("6", "Viewer"),
    ("7", "Marketing"),
    ("8", "Full-access API token"),
    ("9", "Read-only API token"),
];
const USER_ROLE_WEIGHTS: [u64; 7] = [8, 10, 40, 20, 8, 8, 6];

/// (id, primary, weight per mille).
const ENVIRONMENTS: [(&str, bool, u64); 6] = [
    ("main", true, 800),
    ("staging", false, 70),
    ("sandbox-2026-01-05", false, 50),
    ("feature-checkout-v2", false, 40),
    ("qa", false, 25),
    ("migration-legacy-import", false, 15),
];

/// Item type ids; weights `2^40 / (rank + 1)`.
const ITEM_TYPES: [&str; 10] = [
    "855832", "855833", "855834", "855835", "855836", "855837", "855838", "855839", "855840",
    "855841",
];

/// (status, code, message, weight).
const ERRORS: [(u64, &str, &str, u64); 8] = [
    (
        422,
        "INVALID_FIELD",
        "Validation failed: field 'title' is required",
        35,
    ),
    (
        409,
        "STALE_ITEM_VERSION",
        "The record has been modified by someone else",
        15,
    ),
    (
        404,
        "NOT_FOUND",
        "The requested resource does not exist",
        15,
    ),
    (
        401,
        "INVALID_AUTHORIZATION_HEADER",
        "Invalid or expired API token",
        10,
    ),
    (
        403,
        "INSUFFICIENT_PERMISSIONS",
        "Your role does not permit this action",
        10,
    ),
    (
        429,
        "RATE_LIMIT_EXCEEDED",
        "Too many requests, retry later",
        8,
    ),
    (
        500,
        "INTERNAL_SERVER_ERROR",
        "Unexpected error, please retry",
        5,
    ),
    (
        503,
        "SERVICE_UNAVAILABLE",
        "Service temporarily unavailable",
        2,
    ),
];

const FIRST_NAMES: [&str; 32] = [
    "alice", "bob", "carla", "dario", "elena", "fabio", "giulia", "hiro", "irene", "jonas", "kate",
    "luca", "marta", "nico", "olga", "paolo", "quinn", "rosa", "sara", "tomas", "ugo", "vera",
    "walter", "xena", "yusuf", "zoe", "anna", "bruno", "chiara", "diego", "emma", "filippo",
];
const LAST_NAMES: [&str; 32] = [
    "rossi", "smith", "bianchi", "muller", "garcia", "tanaka", "novak", "dubois", "silva",
    "jensen", "kowalski", "ricci", "schmidt", "lopez", "moretti", "brown", "costa", "ferrari",
    "nielsen", "weber", "conti", "martin", "romano", "fischer", "greco", "bruno", "gallo", "meyer",
    "lombardi", "wagner", "barbieri", "fontana",
];
const EMAIL_DOMAINS: [&str; 8] = [
    "example.com",
    "acme.example",
    "studio.example",
    "agency.example",
    "shop.example",
    "media.example",
    "corp.example",
    "news.example",
];
#[rustfmt::skip]
const COMPANIES: [&str; 16] = [
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka", "Soylent",
    "Tyrell", "Cyberdyne", "Aperture", "Vandelay", "Oscorp", "Gringotts", "Monarch",
];
const COMPANY_SUFFIXES: [&str; 6] = ["Inc.", "GmbH", "S.r.l.", "Ltd", "Studio", "Agency"];
const TOKEN_NAMES: [&str; 8] = [
    "Read-only API token",
    "Full-access API token",
    "CI deploy token",
    "Preview token",
    "Netlify build hook",
    "Vercel preview",
    "Migration script",
    "Zapier integration",
];
const SYSTEM_NAMES: [&str; 6] = [
    "scheduler",
    "webhook-dispatcher",
    "backup-worker",
    "search-indexer",
    "workflow-engine",
    "sso-provisioner",
];
const BROWSER_AGENTS: [&str; 5] = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
];
const CLIENT_AGENTS: [&str; 6] = [
    "cms-js-client/3.4.1 node/20.11.0",
    "cms-ruby-client/2.9.0 ruby/3.3.0",
    "python-requests/2.32.3",
    "curl/8.5.0",
    "Go-http-client/2.0",
    "cms-cli/2.1.0 node/22.3.0",
];
const SYSTEM_AGENTS: [&str; 2] = ["internal-worker/4.2", "auditlog-scheduler/1.0"];
const FIRST_OCTETS: [u64; 12] = [10, 31, 37, 45, 52, 79, 81, 93, 151, 172, 185, 203];

#[rustfmt::skip]
const WORDS: [&str; 96] = [
    "the", "of", "and", "a", "to", "in", "is", "for", "with", "on", "new", "our", "your", "how",
    "guide", "release", "summer", "winter", "product", "launch", "design", "system", "content",
    "team", "update", "notes", "review", "best", "practices", "modern", "web", "performance",
    "image", "gallery", "recipe", "travel", "city", "coffee", "market", "report", "annual",
    "customer", "story", "open", "source", "data", "privacy", "policy", "terms", "service",
    "pricing", "plan", "feature", "roadmap", "event", "conference", "talk", "video", "podcast",
    "episode", "interview", "career", "hiring", "engineer", "editor", "workflow", "publish",
    "draft", "schedule", "campaign", "newsletter", "brand", "color", "typography", "layout",
    "mobile", "desktop", "fast", "simple", "secure", "global", "local", "italian", "kitchen",
    "garden", "home", "sport", "music", "festival", "night", "morning", "weekend", "collection",
    "edition", "classic", "premium",
];
#[rustfmt::skip]
const TAGS: [&str; 16] = [
    "news", "featured", "howto", "product", "engineering", "design", "marketing", "events",
    "company", "tutorial", "case-study", "release", "food", "travel", "culture", "sale",
];
const CATEGORIES: [&str; 6] = ["blog", "news", "press", "guides", "changelog", "stories"];
const COLORS: [&str; 8] = [
    "black", "white", "red", "navy", "olive", "sand", "grey", "teal",
];
const SIZES: [&str; 6] = ["XS", "S", "M", "L", "XL", "XXL"];
const SECTION_KINDS: [&str; 5] = ["hero", "text", "gallery", "cta", "faq"];
const LOCALES: [&str; 5] = ["en", "it", "de", "fr", "es"];
/// Locale sets used as object keys (each sorted).
const LOCALE_SETS: [&[&str]; 6] = [
    &["en"],
    &["en"],
    &["en"],
    &["en"],
    &["en", "it"],
    &["de", "en", "fr"],
];
const PERMISSION_ACTIONS: [&str; 5] = ["all", "read", "update", "create", "publish"];
const FILE_EXTS: [&str; 6] = ["jpg", "png", "webp", "pdf", "mp4", "svg"];

/// Precomputed sampling tables, built once per process.
struct Tables {
    actions: Weighted,
    actor_types: Weighted,
    actors: [Weighted; 4],
    envs: Weighted,
    item_types: Weighted,
    user_roles: Weighted,
    errors: Weighted,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| Tables {
        actions: Weighted::zipf(ACTIONS.len() as u64, 3),
        actor_types: Weighted::new(ACTOR_TYPE_WEIGHTS),
        actors: ACTOR_POPULATION.map(|(n, q)| Weighted::zipf(n, q)),
        envs: Weighted::new(ENVIRONMENTS.iter().map(|e| e.2)),
        item_types: Weighted::zipf(ITEM_TYPES.len() as u64, 1),
        user_roles: Weighted::new(USER_ROLE_WEIGHTS),
        errors: Weighted::new(ERRORS.iter().map(|e| e.3)),
    })
}

// ---------------------------------------------------------------------------
// Small formatting helpers (integer only, cannot fail)
// ---------------------------------------------------------------------------

/// Decimal digits of `v` (written right-aligned into `buf`).
#[inline]
fn decimal(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = 0;
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
        n += 1;
        if v == 0 {
            break;
        }
    }
    buf.get(20 - n..).unwrap_or(&[])
}

fn push_u64(out: &mut String, v: u64) {
    let mut buf = [0u8; 20];
    for &b in decimal(v, &mut buf) {
        out.push(char::from(b));
    }
}

/// `v` zero-padded to `width` digits (`width` <= 19; higher digits dropped).
fn push_padded(out: &mut String, v: u64, width: u32) {
    let mut div = 10u64.saturating_pow(width.saturating_sub(1));
    for _ in 0..width {
        out.push(char::from(b'0' + (v / div % 10) as u8));
        div /= 10;
    }
}

fn push_hex(out: &mut String, v: u64, nibbles: u32) {
    for i in (0..nibbles.min(16)).rev() {
        out.push(char::from_digit(((v >> (4 * i)) & 0xf) as u32, 16).unwrap_or('0'));
    }
}

/// Days since 1970-01-01 -> (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u64, u64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

const MICROS_PER_DAY: i64 = 86_400_000_000;
/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z in unix micros.
const MIN_MICROS: i64 = -62_167_219_200_000_000;
const MAX_MICROS: i64 = 253_402_300_799_999_999;

fn push_date(out: &mut String, days: i64) {
    let (y, m, d) = civil_from_days(days);
    push_padded(out, y.clamp(0, 9999) as u64, 4);
    out.push('-');
    push_padded(out, m, 2);
    out.push('-');
    push_padded(out, d, 2);
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (RFC 3339, UTC, always 6 fraction digits).
/// Out-of-range instants are clamped to years 0000..=9999.
fn push_rfc3339_micros(out: &mut String, micros: i64) {
    let micros = micros.clamp(MIN_MICROS, MAX_MICROS);
    let days = micros.div_euclid(MICROS_PER_DAY);
    let rem = micros.rem_euclid(MICROS_PER_DAY) as u64;
    push_date(out, days);
    let secs = rem / 1_000_000;
    out.push('T');
    push_padded(out, secs / 3600, 2);
    out.push(':');
    push_padded(out, secs / 60 % 60, 2);
    out.push(':');
    push_padded(out, secs % 60, 2);
    out.push('.');
    push_padded(out, rem % 1_000_000, 6);
    out.push('Z');
}

fn push_words(r: &mut Rand, out: &mut String, n: u64) {
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(r.pick(&WORDS));
    }
}

/// Title of `n` words (first letter capitalised) into `title`, and its slug
/// into `slug`.
fn push_title_and_slug(r: &mut Rand, title: &mut String, slug: &mut String, n: u64) {
    for i in 0..n {
        let w = r.pick(&WORDS);
        if i > 0 {
            title.push(' ');
            slug.push('-');
        }
        if i == 0 {
            let mut chars = w.chars();
            if let Some(c) = chars.next() {
                title.push(c.to_ascii_uppercase());
            }
            title.push_str(chars.as_str());
        } else {
            title.push_str(w);
        }
        slug.push_str(w);
    }
}

// ---------------------------------------------------------------------------
// Output sinks: one generation code path, two renderings
// ---------------------------------------------------------------------------

/// Receives a JSON document as a stream of tokens. Generation code must emit
/// object keys in sorted order (so both sinks agree byte for byte).
trait Sink {
    fn begin_object(&mut self);
    fn end_object(&mut self);
    fn begin_array(&mut self);
    fn end_array(&mut self);
    fn key(&mut self, k: &str);
    fn str(&mut self, s: &str);
    fn u64(&mut self, v: u64);
    fn f64(&mut self, v: f64);
    fn bool(&mut self, v: bool);
    fn null(&mut self);

    #[inline]
    fn kv_str(&mut self, k: &str, v: &str) {
        self.key(k);
        self.str(v);
    }
    #[inline]
    fn kv_u64(&mut self, k: &str, v: u64) {
        self.key(k);
        self.u64(v);
    }
    #[inline]
    fn kv_bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.bool(v);
    }
    #[inline]
    fn key_object(&mut self, k: &str) {
        self.key(k);
        self.begin_object();
    }
    #[inline]
    fn key_array(&mut self, k: &str) {
        self.key(k);
        self.begin_array();
    }
}

/// Writes compact JSON bytes, identical to serde_json's compact output.
struct ByteSink<'a> {
    out: &'a mut Vec<u8>,
    need_comma: bool,
}

impl ByteSink<'_> {
    #[inline]
    fn sep(&mut self) {
        if self.need_comma {
            self.out.push(b',');
        }
    }

    #[inline]
    fn raw_str(&mut self, s: &str) {
        if !needs_escape(s.as_bytes()) {
            self.out.push(b'"');
            self.out.extend_from_slice(s.as_bytes());
            self.out.push(b'"');
        } else {
            // Rare path: let serde_json do the escaping (writing to a Vec
            // cannot fail).
            let _ = serde_json::to_writer(&mut *self.out, s);
        }
    }
}

/// Whether `s` may contain a byte JSON must escape (`"`, `\\`, or < 0x20).
/// Never a false negative; a false positive would only take the slower
/// (serde_json) path. Checks 8 bytes at a time (SWAR).
#[inline]
fn needs_escape(s: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    #[inline]
    fn has_zero_byte(v: u64) -> bool {
        v.wrapping_sub(LO) & !v & HI != 0
    }
    let mut chunks = s.chunks_exact(8);
    for chunk in &mut chunks {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else {
            return true;
        };
        let v = u64::from_le_bytes(bytes);
        let below_space = v.wrapping_sub(LO * 0x20) & !v & HI != 0;
        if below_space
            || has_zero_byte(v ^ (LO * u64::from(b'"')))
            || has_zero_byte(v ^ (LO * u64::from(b'\\')))
        {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

impl Sink for ByteSink<'_> {
    #[inline]
    fn begin_object(&mut self) {
        self.sep();
        self.out.push(b'{');
        self.need_comma = false;
    }
    #[inline]
    fn end_object(&mut self) {
        self.out.push(b'}');
        self.need_comma = true;
    }
    #[inline]
    fn begin_array(&mut self) {
        self.sep();
        self.out.push(b'[');
        self.need_comma = false;
    }
    #[inline]
    fn end_array(&mut self) {
        self.out.push(b']');
        self.need_comma = true;
    }
    #[inline]
    fn key(&mut self, k: &str) {
        self.sep();
        self.raw_str(k);
        self.out.push(b':');
        self.need_comma = false;
    }
    #[inline]
    fn str(&mut self, s: &str) {
        self.sep();
        self.raw_str(s);
        self.need_comma = true;
    }
    #[inline]
    fn u64(&mut self, v: u64) {
        self.sep();
        let mut buf = [0u8; 20];
        self.out.extend_from_slice(decimal(v, &mut buf));
        self.need_comma = true;
    }
    fn f64(&mut self, v: f64) {
        self.sep();
        if v.is_finite() {
            let _ = serde_json::to_writer(&mut *self.out, &v);
        } else {
            self.out.extend_from_slice(b"null");
        }
        self.need_comma = true;
    }
    #[inline]
    fn bool(&mut self, v: bool) {
        self.sep();
        self.out
            .extend_from_slice(if v { b"true" as &[u8] } else { b"false" });
        self.need_comma = true;
    }
    #[inline]
    fn null(&mut self) {
        self.sep();
        self.out.extend_from_slice(b"null");
        self.need_comma = true;
    }
}

enum Frame {
    Object(Map<String, Value>, Option<String>),
    Array(Vec<Value>),
}

/// Builds a `serde_json::Value`.
struct ValueSink {
    stack: Vec<Frame>,
    root: Option<Value>,
}

impl ValueSink {
    fn push(&mut self, v: Value) {
        match self.stack.last_mut() {
            Some(Frame::Object(map, key)) => {
                if let Some(k) = key.take() {
                    map.insert(k, v);
                }
            }
            Some(Frame::Array(items)) => items.push(v),
            None => self.root = Some(v),
        }
    }

    /// The built value, and the (empty) stack for reuse.
    fn finish(self) -> (Value, Vec<Frame>) {
        (self.root.unwrap_or(Value::Null), self.stack)
    }
}

impl Sink for ValueSink {
    fn begin_object(&mut self) {
        self.stack.push(Frame::Object(Map::new(), None));
    }
    fn end_object(&mut self) {
        if let Some(Frame::Object(map, _)) = self.stack.pop() {
            self.push(Value::Object(map));
        }
    }
    fn begin_array(&mut self) {
        self.stack.push(Frame::Array(Vec::new()));
    }
    fn end_array(&mut self) {
        if let Some(Frame::Array(items)) = self.stack.pop() {
            self.push(Value::Array(items));
        }
    }
    fn key(&mut self, k: &str) {
        if let Some(Frame::Object(_, key)) = self.stack.last_mut() {
            *key = Some(k.to_owned());
        }
    }
    fn str(&mut self, s: &str) {
        self.push(Value::String(s.to_owned()));
    }
    fn u64(&mut self, v: u64) {
        self.push(Value::from(v));
    }
    fn f64(&mut self, v: f64) {
        // Non-finite floats become null, as in serde_json.
        self.push(Value::from(v));
    }
    fn bool(&mut self, v: bool) {
        self.push(Value::Bool(v));
    }
    fn null(&mut self) {
        self.push(Value::Null);
    }
}

// ---------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------

/// Reusable string buffers (cleared per event) to avoid allocation.
#[derive(Default)]
struct Scratch {
    occurred: String,
    actor_id: String,
    actor_name: String,
    description: String,
    error: String,
    ulid: String,
    path: String,
    target_id: String,
    request_id: String,
    ip: String,
    // payload text buffers
    t1: String,
    t2: String,
    t3: String,
    /// Remaining long-text budget of the current payload.
    budget: usize,
}

/// All per-event decisions that affect more than one field.
struct Plan {
    action: &'static ActionSpec,
    actor_kind: usize,
    /// (id, primary, weight) from [`ENVIRONMENTS`].
    env: (&'static str, bool, u64),
    role: Option<(&'static str, &'static str)>,
    item_type: &'static str,
    target_num: u64,
    /// Record version before the request (item writes/operations).
    version: u64,
    /// (status, code, message, weight) from [`ERRORS`].
    error: Option<(u64, &'static str, &'static str, u64)>,
    occurred: i64,
    user_agent: &'static str,
}

/// Deterministic generator of synthetic audit events. See the module docs.
///
/// What the stream looks like (default config, measured over 100k-1M events):
/// - 40 action names, Zipf-Mandelbrot weights `1/(rank+3)`:
///   [`COMMON_ACTION`] ~9.9%, `items.create` ~8%, ... the rarest ~0.9%.
/// - Actor types user/account/access_token/system at 70/15/10/5%; actor ids
///   are digit strings drawn per type with weights `1/(rank+q)` from 200,000
///   actors (160k users, 24k accounts, 15k tokens, 1k system): the top user
///   has ~0.65% of events, and 1M events contain ~135k distinct actors,
///   ~55k of them exactly once. Name, role, user agent and usual IP are
///   stable per actor.
/// - [`RARE_ACTOR_ID`] and [`RARE_PATH`] each with probability 1/100,000
///   (independent draws; exact up to a 2^-64 rounding of the sampler).
/// - Environment `main` (primary) ~80%, five others share the rest.
/// - ~3% error responses (4xx/5xx status plus a top-level `"error"`).
/// - Serialized size ~857 B on average; item write payloads 200 B..4 KB
///   (heavy tail); other request payloads are smaller (35..~600 B), response
///   payloads < 400 B.
/// - `late_fraction` of events have an `occurred_at` strictly before the
///   newest one emitted so far (by up to `late_max_secs`).
pub struct EventGenerator {
    rng: Rand,
    tables: &'static Tables,
    start_micros: i64,
    step_micros: f64,
    /// `floor(step_micros)`: on-time events get a jitter in `0..jitter_span`.
    jitter_span: u64,
    /// `late_fraction` as a probability in `[0, 1]`.
    late_p: f64,
    late_max_micros: u64,
    with_ids: bool,
    /// Number of events generated so far (slot of the next event).
    index: u64,
    /// Newest `occurred_at` emitted so far (unix micros).
    watermark: Option<i64>,
    s: Scratch,
    /// Reused frame stack of the `Value` builder.
    value_stack: Vec<Frame>,
}

impl EventGenerator {
    /// Creates a generator. Invalid numeric settings fall back to sane
    /// values (see [`GenConfig`]); this never fails.
    pub fn new(cfg: GenConfig) -> Self {
        let start_micros = i64::try_from(cfg.start.unix_timestamp_nanos() / 1000).unwrap_or(0);
        let eps = if cfg.events_per_second.is_finite() && cfg.events_per_second > 0.0 {
            cfg.events_per_second
        } else {
            1000.0
        };
        let step_micros = 1_000_000.0 / eps;
        let late_p = if cfg.late_fraction.is_finite() {
            cfg.late_fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let late_max_micros = u64::try_from(cfg.late_max_secs)
            .unwrap_or(0)
            .saturating_mul(1_000_000);
        EventGenerator {
            rng: Rand(fastrand::Rng::with_seed(cfg.seed)),
            tables: tables(),
            start_micros,
            step_micros,
            jitter_span: step_micros.floor() as u64,
            late_p,
            late_max_micros,
            with_ids: cfg.with_ids,
            index: 0,
            watermark: None,
            s: Scratch::default(),
            value_stack: Vec::new(),
        }
    }

    /// Generates the next event as a `serde_json::Value`.
    pub fn next_event(&mut self) -> Value {
        let mut stack = std::mem::take(&mut self.value_stack);
        stack.clear();
        let mut sink = ValueSink { stack, root: None };
        self.emit(&mut sink);
        let (value, stack) = sink.finish();
        self.value_stack = stack;
        value
    }

    /// Appends one compact JSON line plus '\n'.
    ///
    /// The bytes equal `serde_json::to_vec(&v)` (plus '\n') for the `v` that
    /// [`next_event`](Self::next_event) would have returned at this position.
    pub fn write_ndjson_line(&mut self, out: &mut Vec<u8>) {
        let mut sink = ByteSink {
            out,
            need_comma: false,
        };
        self.emit(&mut sink);
        sink.out.push(b'\n');
    }

    /// n events as NDJSON.
    pub fn ndjson_batch(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n.saturating_mul(900));
        for _ in 0..n {
            self.write_ndjson_line(&mut out);
        }
        out
    }

    /// Timestamp of the next event (unix micros), maintaining the watermark.
    fn next_occurred(&mut self) -> i64 {
        let slot = self.index;
        self.index = self.index.saturating_add(1);
        let base = self
            .start_micros
            .saturating_add((slot as f64 * self.step_micros) as i64);
        let jitter = if self.jitter_span > 1 {
            self.rng.below(self.jitter_span)
        } else {
            0
        };
        let on_time = base.saturating_add(i64::try_from(jitter).unwrap_or(i64::MAX));
        let late_roll = self.rng.unit();
        let late_by = self.rng.below(self.late_max_micros);
        match self.watermark {
            Some(wm) if late_roll < self.late_p && self.late_max_micros > 0 => {
                // Strictly before the newest timestamp seen so far.
                wm.saturating_sub(1)
                    .saturating_sub(i64::try_from(late_by).unwrap_or(i64::MAX))
            }
            _ => {
                let wm = self.watermark.map_or(on_time, |wm| wm.max(on_time));
                self.watermark = Some(wm);
                on_time
            }
        }
    }

    fn plan(&mut self) -> Plan {
        let t = self.tables;
        let occurred = self.next_occurred();
        let r = &mut self.rng;

        let rare_actor = r.below(RARE_ONE_IN) == 0;
        let rare_path = r.below(RARE_ONE_IN) == 0;

        let mut action_idx = t.actions.sample(r);
        if rare_path {
            action_idx = PUBLISH_ACTION;
        }
        let action = ACTIONS.get(action_idx).unwrap_or(&ACTIONS[0]);

        let (actor_kind, actor_rank) = if rare_actor {
            (ACTOR_USER, None)
        } else {
            let kind = t.actor_types.sample(r);
            let rank = t.actors.get(kind).map_or(0, |w| w.sample(r)) as u64 + 1;
            (kind, Some(rank))
        };
        let h = mix(actor_rank.unwrap_or(7) ^ ((actor_kind as u64) << 56));

        let role = match actor_kind {
            ACTOR_USER => {
                // Stable per user: derived from the actor hash, not the stream.
                let mut hr = Rand(fastrand::Rng::with_seed(h));
                let i = if actor_rank.is_none() {
                    2
                } else {
                    t.user_roles.sample(&mut hr)
                };
                ROLES.get(i).copied()
            }
            ACTOR_TOKEN => ROLES.get(if h.is_multiple_of(3) { 7 } else { 8 }).copied(),
            _ => None,
        };

        let user_agent = match actor_kind {
            ACTOR_USER => {
                if h % 100 < 85 {
                    cyc(&BROWSER_AGENTS, h >> 8, "")
                } else {
                    cyc(&CLIENT_AGENTS, h >> 8, "")
                }
            }
            ACTOR_SYSTEM => cyc(&SYSTEM_AGENTS, h >> 8, ""),
            _ => cyc(&CLIENT_AGENTS, h >> 8, ""),
        };

        let env = cyc(&ENVIRONMENTS, t.envs.sample(r) as u64, ENVIRONMENTS[0]);
        let item_type = ITEM_TYPES
            .get(t.item_types.sample(r))
            .copied()
            .unwrap_or(ITEM_TYPES[0]);

        let target_num = if rare_path {
            RARE_ITEM_ID
        } else {
            match action.target {
                // Item ids >= 300,000 never collide with RARE_ITEM_ID.
                // Rank: log-uniform bucket of 64 items (hot items are hot, but
                // no single item dominates), scrambled by a bijection.
                Target::Item | Target::None => {
                    let rank = r.log_uniform(15) * 64 + r.below(64);
                    300_000 + (rank * 1_234_567) % (1 << 21)
                }
                Target::Upload => {
                    let rank = r.log_uniform(16) * 64 + r.below(64);
                    10_000_000 + (rank * 2_654_435) % (1 << 22)
                }
                Target::ItemType | Target::Env => 0,
                Target::Misc => 1 + r.log_uniform(15),
            }
        };

        let version = 1 + r.log_uniform(10);

        let error = if r.below(1000) < ERROR_PER_MILLE {
            ERRORS.get(t.errors.sample(r)).copied()
        } else {
            None
        };

        // Fill the shared strings.
        let s = &mut self.s;
        s.occurred.clear();
        push_rfc3339_micros(&mut s.occurred, occurred);

        s.actor_id.clear();
        s.actor_name.clear();
        match actor_rank {
            None => {
                s.actor_id.push_str(RARE_ACTOR_ID);
                s.actor_name.push_str(RARE_ACTOR_NAME);
            }
            Some(rank) => {
                push_u64(&mut s.actor_id, actor_numeric_id(actor_kind, rank));
                match actor_kind {
                    ACTOR_USER => {
                        let first = cyc(&FIRST_NAMES, rank, "");
                        let last = cyc(&LAST_NAMES, rank / 32, "");
                        let domain = cyc(&EMAIL_DOMAINS, rank / 1024, "example.com");
                        s.actor_name.push_str(first);
                        s.actor_name.push('.');
                        s.actor_name.push_str(last);
                        if rank >= 8192 {
                            push_u64(&mut s.actor_name, rank / 8192);
                        }
                        s.actor_name.push('@');
                        s.actor_name.push_str(domain);
                    }
                    ACTOR_ACCOUNT => {
                        s.actor_name.push_str(cyc(&COMPANIES, rank, ""));
                        s.actor_name.push(' ');
                        s.actor_name.push_str(cyc(&COMPANY_SUFFIXES, rank / 16, ""));
                        if rank >= 96 {
                            s.actor_name.push_str(" #");
                            push_u64(&mut s.actor_name, rank / 96);
                        }
                    }
                    ACTOR_TOKEN => s.actor_name.push_str(cyc(&TOKEN_NAMES, h, "")),
                    _ => s.actor_name.push_str(cyc(&SYSTEM_NAMES, rank, "system")),
                }
            }
        }

        s.target_id.clear();
        match action.target {
            Target::ItemType => s.target_id.push_str(item_type),
            Target::Env => s.target_id.push_str(env.0),
            _ => push_u64(&mut s.target_id, target_num),
        }

        s.path.clear();
        if rare_path {
            s.path.push_str(RARE_PATH);
        } else {
            s.path.push_str(action.prefix);
            if action.target != Target::None {
                s.path.push_str(&s.target_id);
            }
            s.path.push_str(action.suffix);
        }

        s.description.clear();
        s.description.push_str(action.describe);
        if action.target != Target::None || action.body == Body::ItemWrite {
            s.description.push_str(" #");
            s.description.push_str(&s.target_id);
        }
        if action.body == Body::ItemWrite || action.body == Body::ItemOp {
            s.description.push_str(" (model ");
            s.description.push_str(item_type);
            s.description.push(')');
        }
        if !env.1 {
            s.description.push_str(" in environment ");
            s.description.push_str(env.0);
        }

        s.error.clear();
        if let Some((_, code, msg, _)) = error {
            s.error.push_str(code);
            s.error.push_str(": ");
            s.error.push_str(msg);
        }

        // ULID random part is always drawn (keeps streams aligned).
        let hi = r.next();
        let lo = r.next();
        s.ulid.clear();
        if self.with_ids {
            let ms = u64::try_from(occurred.div_euclid(1000)).unwrap_or(0);
            let random = (u128::from(hi & 0xFFFF) << 64) | u128::from(lo);
            let mut buf = [0u8; ulid::ULID_LEN];
            s.ulid
                .push_str(ulid::Ulid::from_parts(ms, random).array_to_str(&mut buf));
        }

        // uuid-v4-like request id.
        let (u1, u2) = (r.next(), r.next());
        s.request_id.clear();
        push_hex(&mut s.request_id, u1 >> 32, 8);
        s.request_id.push('-');
        push_hex(&mut s.request_id, u1 >> 16, 4);
        s.request_id.push_str("-4");
        push_hex(&mut s.request_id, u1, 3);
        s.request_id.push('-');
        push_hex(&mut s.request_id, 0x8 | ((u2 >> 62) & 0x3), 1);
        push_hex(&mut s.request_id, u2 >> 48, 3);
        s.request_id.push('-');
        push_hex(&mut s.request_id, u2, 12);

        // IP: mostly the actor's usual address, sometimes another one.
        let ip_seed = if r.below(10) == 0 { r.next() } else { mix(h) };
        s.ip.clear();
        push_u64(&mut s.ip, cyc(&FIRST_OCTETS, ip_seed, 10));
        for shift in [8, 16, 24] {
            s.ip.push('.');
            push_u64(&mut s.ip, (ip_seed >> (shift + 8)) & 0xff);
        }

        Plan {
            action,
            actor_kind,
            env,
            role,
            item_type,
            target_num,
            version,
            error,
            occurred,
            user_agent,
        }
    }

    fn emit<S: Sink>(&mut self, out: &mut S) {
        let p = self.plan();
        let s = &mut self.s;
        let r = &mut self.rng;

        out.begin_object();
        out.kv_str("action_name", p.action.name);

        out.key_object("actor");
        out.kv_str("id", &s.actor_id);
        out.kv_str("name", &s.actor_name);
        out.kv_str("type", cyc(&ACTOR_TYPES, p.actor_kind as u64, "user"));
        out.end_object();

        out.kv_str("description", &s.description);

        out.key_object("environment");
        out.kv_str("id", p.env.0);
        out.kv_bool("primary", p.env.1);
        out.end_object();

        if p.error.is_some() {
            out.kv_str("error", &s.error);
        }
        if self.with_ids {
            out.kv_str("id", &s.ulid);
        }
        out.kv_str("occurred_at", &s.occurred);

        out.key_object("request");
        out.kv_str("id", &s.request_id);
        out.kv_str("ip", &s.ip);
        out.kv_str("method", p.action.method);
        out.kv_str("path", &s.path);
        out.key("payload");
        request_payload(r, s, &p, out);
        out.kv_str("user_agent", p.user_agent);
        out.end_object();

        out.key_object("response");
        out.key("payload");
        response_payload(r, s, &p, out);
        out.kv_u64("status", p.error.map_or(p.action.ok_status, |e| e.0));
        out.end_object();

        out.key("role");
        match p.role {
            Some((id, name)) => {
                out.begin_object();
                out.kv_str("id", id);
                out.kv_str("name", name);
                out.end_object();
            }
            None => out.null(),
        }
        out.end_object();
    }
}

impl Iterator for EventGenerator {
    type Item = Value;

    /// Never returns `None`: the stream is infinite.
    fn next(&mut self) -> Option<Value> {
        Some(self.next_event())
    }
}

// ---------------------------------------------------------------------------
// Payloads (keys in sorted order!)
// ---------------------------------------------------------------------------

/// `{"data":{"id":..,"type":..}}` relationship linkage.
fn linkage<S: Sink>(out: &mut S, key: &str, id: &str, ty: &str) {
    out.key_object(key);
    out.key_object("data");
    out.kv_str("id", id);
    out.kv_str("type", ty);
    out.end_object();
    out.end_object();
}

fn tags<S: Sink>(r: &mut Rand, out: &mut S, max: u64) {
    out.key_array("tags");
    // Distinct tags: odd stride over a power-of-two table.
    let start = r.below(TAGS.len() as u64);
    let stride = 2 * r.below(TAGS.len() as u64 / 2) + 1;
    for i in 0..r.below(max + 1) {
        out.str(cyc(&TAGS, start + i * stride, ""));
    }
    out.end_array();
}

/// SEO block; the title is taken from `s.t1`.
fn seo<S: Sink>(r: &mut Rand, s: &mut Scratch, out: &mut S) {
    out.key_object("seo");
    s.t3.clear();
    let n = r.range(3, 10);
    push_words(r, &mut s.t3, n);
    out.kv_str("description", &s.t3);
    out.key("image");
    if r.chance(2, 3) {
        out.u64(10_000_000 + r.below(1 << 22));
    } else {
        out.null();
    }
    out.kv_bool("no_index", r.chance(1, 20));
    out.kv_str("title", &s.t1);
    out.end_object();
}

/// Total bytes of long free text allowed in one item payload; keeps every
/// item payload under 4 KB.
const TEXT_BUDGET: usize = 2_800;

/// Free text with a heavy tail: usually 0..32 words (log-uniform), but 1 in
/// 20 texts has up to 420 words (~3 KB). Stops early when `budget` (bytes,
/// shared by all long texts of one payload) is exhausted.
fn long_text(r: &mut Rand, buf: &mut String, budget: &mut usize) {
    buf.clear();
    let n = if r.chance(1, 20) {
        r.log_uniform(9).min(420)
    } else {
        r.log_uniform(5)
    };
    for i in 0..n {
        let w = r.pick(&WORDS);
        if buf.len() + w.len() + 1 > *budget {
            break;
        }
        if i > 0 {
            buf.push(' ');
        }
        buf.push_str(w);
    }
    *budget = budget.saturating_sub(buf.len());
}

fn item_attributes<S: Sink>(r: &mut Rand, s: &mut Scratch, p: &Plan, out: &mut S) {
    let kind = ITEM_TYPES
        .iter()
        .position(|&t| t == p.item_type)
        .unwrap_or(0)
        % 4;
    out.key_object("attributes");
    s.budget = TEXT_BUDGET;
    s.t1.clear();
    s.t2.clear();
    let n = r.range(2, 7);
    push_title_and_slug(r, &mut s.t1, &mut s.t2, n);
    match kind {
        0 => {
            // article
            long_text(r, &mut s.t3, &mut s.budget);
            out.kv_str("body", &s.t3);
            out.kv_str("category", r.pick(&CATEGORIES));
            out.kv_bool("featured", r.chance(1, 10));
            out.key("published_on");
            if r.chance(3, 4) {
                s.t3.clear();
                let days = p.occurred.div_euclid(MICROS_PER_DAY) - r.below(60) as i64;
                push_date(&mut s.t3, days);
                out.str(&s.t3);
            } else {
                out.null();
            }
            out.kv_u64("reading_time", r.range(1, 25));
            seo(r, s, out);
            out.kv_str("slug", &s.t2);
            tags(r, out, 6);
            out.kv_str("title", &s.t1);
        }
        1 => {
            // product
            long_text(r, &mut s.t3, &mut s.budget);
            out.kv_str("description", &s.t3);
            out.key_object("dimensions");
            out.kv_u64("depth_mm", r.range(10, 900));
            out.kv_u64("height_mm", r.range(10, 900));
            out.kv_u64("width_mm", r.range(10, 900));
            out.end_object();
            out.kv_bool("in_stock", r.chance(4, 5));
            out.kv_str("name", &s.t1);
            let price_cents = r.range(199, 99_999);
            out.key("price");
            out.f64(price_cents as f64 / 100.0);
            s.t3.clear();
            s.t3.push_str("SKU-");
            push_hex(&mut s.t3, r.next(), 8);
            out.kv_str("sku", &s.t3);
            out.kv_str("slug", &s.t2);
            out.kv_u64("stock_count", r.log_uniform(12));
            tags(r, out, 4);
            out.key_array("variants");
            for i in 0..r.below(4) {
                out.begin_object();
                out.kv_str("color", r.pick(&COLORS));
                out.key("price");
                out.f64((price_cents + 100 * i) as f64 / 100.0);
                out.kv_str("size", r.pick(&SIZES));
                s.t2.clear();
                s.t2.push_str(&s.t3);
                s.t2.push('-');
                push_u64(&mut s.t2, i + 1);
                out.kv_str("sku", &s.t2);
                out.end_object();
            }
            out.end_array();
        }
        2 => {
            // page
            out.key_array("sections");
            for _ in 0..r.range(1, 3) {
                out.begin_object();
                s.t3.clear();
                let n = r.range(2, 6);
                push_words(r, &mut s.t3, n);
                out.kv_str("heading", &s.t3);
                out.kv_str("kind", r.pick(&SECTION_KINDS));
                s.t3.clear();
                long_text(r, &mut s.t3, &mut s.budget);
                out.kv_str("text", &s.t3);
                out.end_object();
            }
            out.end_array();
            seo(r, s, out);
            out.kv_bool("show_in_menu", r.chance(1, 3));
            out.kv_str("slug", &s.t2);
            out.kv_str("title", &s.t1);
        }
        _ => {
            // author profile
            out.key("avatar");
            if r.chance(4, 5) {
                out.u64(10_000_000 + r.below(1 << 22));
            } else {
                out.null();
            }
            long_text(r, &mut s.t3, &mut s.budget);
            out.kv_str("bio", &s.t3);
            s.t3.clear();
            s.t3.push_str(&s.t2);
            s.t3.push_str("@example.com");
            out.kv_str("email", &s.t3);
            out.kv_str("name", &s.t1);
            out.kv_str("slug", &s.t2);
            out.key_object("social");
            out.key("github");
            if r.chance(1, 2) {
                s.t3.clear();
                s.t3.push_str("https://github.com/");
                s.t3.push_str(&s.t2);
                out.str(&s.t3);
            } else {
                out.null();
            }
            out.key("twitter");
            if r.chance(1, 3) {
                s.t3.clear();
                s.t3.push('@');
                s.t3.push_str(&s.t2);
                out.str(&s.t3);
            } else {
                out.null();
            }
            out.end_object();
        }
    }
    out.end_object();
}

fn request_payload<S: Sink>(r: &mut Rand, s: &mut Scratch, p: &Plan, out: &mut S) {
    let resource = p.action.resource;
    out.begin_object();
    match p.action.body {
        Body::ItemWrite => {
            out.key_object("data");
            item_attributes(r, s, p, out);
            let is_update = p.action.target != Target::None;
            if is_update {
                out.kv_str("id", &s.target_id);
                out.key_object("meta");
                s.t3.clear();
                push_u64(&mut s.t3, p.version);
                out.kv_str("current_version", &s.t3);
                out.end_object();
            }
            out.key_object("relationships");
            linkage(out, "item_type", p.item_type, "item_type");
            out.end_object();
            out.kv_str("type", "item");
            out.end_object();
        }
        Body::ItemOp => {
            out.key_object("data");
            out.key_object("attributes");
            out.key_array("content_in_locales");
            for l in LOCALES.iter().take(r.range(1, 3) as usize) {
                out.str(l);
            }
            out.end_array();
            out.kv_bool("non_localized_content", r.chance(9, 10));
            out.key("scheduled_at");
            if p.action.name == "scheduled_publications.create" {
                s.t3.clear();
                let at = p.occurred + 3_600_000_000 * (1 + r.below(72) as i64);
                push_rfc3339_micros(&mut s.t3, at - at.rem_euclid(60_000_000));
                out.str(&s.t3);
            } else {
                out.null();
            }
            out.end_object();
            out.kv_str("id", &s.target_id);
            out.kv_str("type", resource);
            out.end_object();
            out.key_object("meta");
            out.kv_bool("recursive", r.chance(1, 4));
            out.end_object();
        }
        Body::BulkItems => {
            out.key_object("data");
            out.key_object("relationships");
            out.key_object("items");
            out.key_array("data");
            for _ in 0..r.range(2, 12) {
                out.begin_object();
                s.t3.clear();
                push_u64(&mut s.t3, 300_000 + r.below(1 << 21));
                out.kv_str("id", &s.t3);
                out.kv_str("type", "item");
                out.end_object();
            }
            out.end_array();
            out.end_object();
            out.end_object();
            out.kv_str("type", resource);
            out.end_object();
        }
        Body::Upload => {
            out.key_object("data");
            out.key_object("attributes");
            out.key("author");
            if r.chance(1, 3) {
                out.str(&s.actor_name);
            } else {
                out.null();
            }
            out.key("copyright");
            if r.chance(1, 4) {
                s.t3.clear();
                s.t3.push_str("(c) 2026 ");
                s.t3.push_str(r.pick(&COMPANIES));
                out.str(&s.t3);
            } else {
                out.null();
            }
            out.key_object("default_field_metadata");
            let locales = cyc(&LOCALE_SETS, r.below(LOCALE_SETS.len() as u64), &[]);
            for &locale in locales {
                out.key_object(locale);
                s.t3.clear();
                let n = r.range(2, 8);
                push_words(r, &mut s.t3, n);
                out.kv_str("alt", &s.t3);
                out.key_object("custom_data");
                out.end_object();
                out.key("focal_point");
                if r.chance(1, 3) {
                    out.begin_object();
                    out.key("x");
                    out.f64(r.below(1001) as f64 / 1000.0);
                    out.key("y");
                    out.f64(r.below(1001) as f64 / 1000.0);
                    out.end_object();
                } else {
                    out.null();
                }
                s.t3.clear();
                let n = r.range(1, 4);
                push_words(r, &mut s.t3, n);
                out.kv_str("title", &s.t3);
                out.end_object();
            }
            out.end_object();
            s.t1.clear();
            s.t1.push_str("img_");
            push_u64(&mut s.t1, r.below(100_000));
            s.t1.push('.');
            s.t1.push_str(r.pick(&FILE_EXTS));
            out.kv_str("filename", &s.t1);
            s.t2.clear();
            s.t2.push('/');
            push_u64(&mut s.t2, 10_000 + r.below(90_000));
            s.t2.push('/');
            push_u64(&mut s.t2, p.occurred.div_euclid(1_000_000).max(0) as u64);
            s.t2.push('-');
            s.t2.push_str(&s.t1);
            out.kv_str("path", &s.t2);
            out.kv_u64("size", 1_000 + r.log_uniform(24));
            tags(r, out, 3);
            out.end_object();
            out.kv_str("type", resource);
            out.end_object();
        }
        Body::Delete => {
            out.key_object("meta");
            out.kv_bool("force", r.chance(1, 10));
            out.kv_str(
                "reason",
                if r.chance(1, 2) {
                    "cleanup"
                } else {
                    "user_request"
                },
            );
            out.end_object();
        }
        Body::Login => {
            out.key_object("data");
            out.key_object("attributes");
            out.key("email");
            if p.actor_kind == ACTOR_USER {
                out.str(&s.actor_name);
            } else {
                out.null();
            }
            out.kv_bool("otp_code_present", r.chance(1, 3));
            out.kv_bool("remember_me", r.chance(1, 2));
            out.kv_bool("sso", r.chance(1, 5));
            out.end_object();
            out.kv_str("type", "session_request");
            out.end_object();
        }
        Body::Logout => {
            out.key_object("meta");
            out.kv_str(
                "reason",
                if r.chance(3, 4) {
                    "user_initiated"
                } else {
                    "idle_timeout"
                },
            );
            out.end_object();
        }
        Body::Role => {
            out.key_object("data");
            out.key_object("attributes");
            for k in [
                "can_access_audit_log",
                "can_edit_schema",
                "can_edit_site",
                "can_manage_users",
                "can_publish_content",
            ] {
                out.kv_bool(k, r.chance(1, 2));
            }
            out.kv_str("name", cyc(&ROLES, r.below(7), ROLES[0]).1);
            out.key_array("positive_item_type_permissions");
            for _ in 0..r.below(5) {
                out.begin_object();
                out.kv_str("action", r.pick(&PERMISSION_ACTIONS));
                out.kv_str("environment", p.env.0);
                out.kv_str("item_type", r.pick(&ITEM_TYPES));
                out.kv_str("on_creator", if r.chance(1, 4) { "self" } else { "anyone" });
                out.end_object();
            }
            out.end_array();
            out.end_object();
            out.kv_str("type", resource);
            out.end_object();
        }
        Body::Token => {
            out.key_object("data");
            out.key_object("attributes");
            out.kv_bool("can_access_cda", true);
            out.kv_bool("can_access_cda_preview", r.chance(1, 2));
            out.kv_bool("can_access_cma", r.chance(1, 3));
            out.kv_str("name", r.pick(&TOKEN_NAMES));
            out.end_object();
            out.key_object("relationships");
            linkage(out, "role", if r.chance(1, 3) { "8" } else { "9" }, "role");
            out.end_object();
            out.kv_str("type", resource);
            out.end_object();
        }
        Body::Env => {
            out.key_object("data");
            out.key_object("attributes");
            out.kv_bool("fast", r.chance(1, 2));
            out.kv_bool("force", r.chance(1, 10));
            out.end_object();
            s.t3.clear();
            s.t3.push_str("sandbox-");
            push_hex(&mut s.t3, r.next(), 6);
            out.kv_str("id", &s.t3);
            out.kv_str("type", resource);
            out.end_object();
        }
        Body::Job => {
            out.key_object("data");
            out.key_object("attributes");
            s.t3.clear();
            let n = r.range(2, 10);
            push_words(r, &mut s.t3, n);
            out.kv_str("description", &s.t3);
            out.kv_bool("include_uploads", r.chance(1, 2));
            out.end_object();
            out.kv_str("type", resource);
            out.end_object();
        }
        Body::Query => {
            out.key_object("filter");
            out.kv_str("format", if r.chance(1, 2) { "csv" } else { "json" });
            out.end_object();
            out.key_object("page");
            out.kv_u64("limit", 100);
            out.kv_u64("offset", 100 * r.below(20));
            out.end_object();
        }
        Body::Generic => {
            out.key_object("data");
            out.key_object("attributes");
            out.kv_bool("enabled", r.chance(4, 5));
            s.t3.clear();
            let n = r.range(1, 5);
            push_words(r, &mut s.t3, n);
            out.kv_str("name", &s.t3);
            s.t3.clear();
            let n = r.log_uniform(5);
            push_words(r, &mut s.t3, n);
            out.kv_str("notes", &s.t3);
            out.kv_u64("position", r.below(50));
            out.key_object("settings");
            out.kv_u64("level", r.below(5));
            out.key_array("locales");
            for l in LOCALES.iter().take(r.range(1, 5) as usize) {
                out.str(l);
            }
            out.end_array();
            out.kv_str("mode", if r.chance(1, 2) { "strict" } else { "lenient" });
            out.end_object();
            out.end_object();
            if p.action.target != Target::None {
                out.kv_str("id", &s.target_id);
            }
            out.kv_str("type", resource);
            out.end_object();
        }
    }
    out.end_object();
}

fn response_payload<S: Sink>(r: &mut Rand, s: &mut Scratch, p: &Plan, out: &mut S) {
    out.begin_object();
    if let Some((_, code, msg, _)) = p.error {
        out.key_array("data");
        out.begin_object();
        out.key_object("attributes");
        out.kv_str("code", code);
        out.key_object("details");
        out.kv_str("message", msg);
        out.end_object();
        out.end_object();
        s.t3.clear();
        push_hex(&mut s.t3, r.next(), 8);
        out.kv_str("id", &s.t3);
        out.kv_str("type", "api_error");
        out.end_object();
        out.end_array();
        out.end_object();
        return;
    }
    out.key_object("data");
    match p.action.body {
        Body::ItemWrite | Body::ItemOp => {
            out.kv_str("id", &s.target_id);
            out.key_object("meta");
            s.t3.clear();
            let new_version = match p.action.name {
                "items.create" | "items.duplicate" => 1,
                _ => p.version + 1,
            };
            push_u64(&mut s.t3, new_version);
            out.kv_str("current_version", &s.t3);
            out.kv_bool("is_valid", r.chance(19, 20));
            let status = match p.action.name {
                "items.publish" => "published",
                "items.unpublish" | "items.create" | "items.duplicate" => "draft",
                _ => "updated",
            };
            out.kv_str("status", status);
            out.end_object();
            out.kv_str("type", "item");
        }
        Body::Login | Body::Logout => {
            s.t3.clear();
            push_hex(&mut s.t3, r.next(), 16);
            out.kv_str("id", &s.t3);
            out.key_object("relationships");
            let ty = cyc(&ACTOR_TYPES, p.actor_kind as u64, "user");
            linkage(out, ty, &s.actor_id, ty);
            out.end_object();
            out.kv_str("type", "session");
        }
        Body::Job | Body::Env | Body::BulkItems => {
            s.t3.clear();
            s.t3.push_str("job-");
            push_hex(&mut s.t3, r.next(), 12);
            out.kv_str("id", &s.t3);
            out.kv_str("type", "job");
        }
        _ => {
            if p.action.target == Target::None {
                s.t3.clear();
                push_u64(&mut s.t3, p.target_num);
                out.kv_str("id", &s.t3);
            } else {
                out.kv_str("id", &s.target_id);
            }
            out.kv_str("type", p.action.resource);
        }
    }
    out.end_object();
    out.end_object();
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};
    use time::format_description::well_known::Rfc3339;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn gen(seed: u64) -> EventGenerator {
        EventGenerator::new(GenConfig {
            seed,
            ..GenConfig::default()
        })
    }

    fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
        v.pointer(ptr)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("missing string at {ptr} in {v}"))
    }

    fn parse_micros(s: &str) -> Result<i64, Box<dyn std::error::Error>> {
        let t = OffsetDateTime::parse(s, &Rfc3339)?;
        Ok(i64::try_from(t.unix_timestamp_nanos() / 1000)?)
    }

    fn json_len(v: &Value) -> Result<usize, serde_json::Error> {
        Ok(serde_json::to_vec(v)?.len())
    }

    #[test]
    fn determinism_same_seed_same_bytes() {
        let a = gen(7).ndjson_batch(20_000);
        let b = gen(7).ndjson_batch(20_000);
        assert_eq!(a, b);
        let c = gen(8).ndjson_batch(20_000);
        assert_ne!(a, c);

        let mut g1 = gen(7);
        let mut g2 = gen(7);
        for _ in 0..2_000 {
            assert_eq!(g1.next_event(), g2.next_event());
        }
    }

    /// The byte writer and the Value builder share one code path; this also
    /// proves every object's keys are emitted in sorted order (serde_json's
    /// default map sorts them) and without duplicates.
    #[test]
    fn byte_writer_matches_serde_json_of_value() -> TestResult {
        for with_ids in [false, true] {
            let cfg = GenConfig {
                seed: 99,
                with_ids,
                ..GenConfig::default()
            };
            let mut by_value = EventGenerator::new(cfg.clone());
            let mut by_bytes = EventGenerator::new(cfg);
            let mut got = Vec::new();
            for _ in 0..20_000 {
                let mut expected = serde_json::to_vec(&by_value.next_event())?;
                expected.push(b'\n');
                got.clear();
                by_bytes.write_ndjson_line(&mut got);
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&expected)
                );
            }
        }
        Ok(())
    }

    /// Pins the stream for the default config, so accidental changes (which
    /// would silently change benchmark data sets) and platform differences
    /// are caught. Update the constant deliberately when changing the
    /// generator.
    #[test]
    fn pinned_stream() {
        let v = gen(42).next_event();
        assert!(str_at(&v, "/occurred_at").starts_with("2026-01-01T00:00:00."));
        // FNV-1a over the first 1000 NDJSON lines.
        let hash = gen(42)
            .ndjson_batch(1_000)
            .iter()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        assert_eq!(hash, PINNED_HASH, "stream changed: got {hash:#x}");
    }

    const PINNED_HASH: u64 = 0x8ebc_88be_946a_3ee8;

    #[test]
    fn frequencies() {
        let n = 200_000;
        let mut g = gen(42);
        let mut types = [0usize; 4];
        let mut main_env = 0usize;
        let mut errors = 0usize;
        let mut actions = BTreeMap::<String, usize>::new();
        let mut actors = HashMap::<String, usize>::new();
        for _ in 0..n {
            let v = g.next_event();
            *actions
                .entry(str_at(&v, "/action_name").to_owned())
                .or_default() += 1;
            let t = str_at(&v, "/actor/type");
            match ACTOR_TYPES.iter().position(|&x| x == t) {
                Some(i) => types[i] += 1,
                None => panic!("unknown actor type {t}"),
            }
            *actors
                .entry(str_at(&v, "/actor/id").to_owned())
                .or_default() += 1;
            if str_at(&v, "/environment/id") == "main" {
                assert_eq!(v.pointer("/environment/primary"), Some(&Value::Bool(true)));
                main_env += 1;
            }
            if v.get("error").is_some() {
                errors += 1;
                let status = v.pointer("/response/status").and_then(Value::as_u64);
                assert!(matches!(status, Some(400..=599)), "{v}");
            }
        }
        let share = |c: usize| c as f64 / n as f64;
        let common = actions.get(COMMON_ACTION).copied().unwrap_or(0);
        assert!(
            (0.08..=0.12).contains(&share(common)),
            "common {}",
            share(common)
        );
        // items.update is the most frequent of ~40 actions.
        assert_eq!(actions.values().copied().max(), Some(common));
        assert!(actions.len() >= 35, "{} actions", actions.len());
        for (i, expected) in [0.70, 0.15, 0.10, 0.05].iter().enumerate() {
            let got = share(types[i]);
            assert!((got - expected).abs() < 0.02, "type {i}: {got}");
        }
        assert!((0.77..=0.83).contains(&share(main_env)));
        assert!(
            (0.02..=0.04).contains(&share(errors)),
            "errors {}",
            share(errors)
        );
        // Skew: the top actor is frequent, and many actors occur exactly once.
        let top = actors.values().copied().max().unwrap_or(0);
        let singletons = actors.values().filter(|&&c| c == 1).count();
        assert!(top > n / 200, "top actor only {top}");
        assert!(singletons > 10_000, "singletons {singletons}");
    }

    #[test]
    fn rare_needles() -> TestResult {
        let n = 1_000_000;
        let mut g = gen(42);
        let mut line = Vec::new();
        let (mut rare_actor, mut rare_path) = (0usize, 0usize);
        let actor_needle = format!("\"id\":\"{RARE_ACTOR_ID}\"");
        let path_needle = format!("\"path\":\"{RARE_PATH}\"");
        for _ in 0..n {
            line.clear();
            g.write_ndjson_line(&mut line);
            let s = std::str::from_utf8(&line)?;
            if s.contains(&actor_needle) {
                rare_actor += 1;
                let v: Value = serde_json::from_str(s)?;
                assert_eq!(str_at(&v, "/actor/id"), RARE_ACTOR_ID);
                assert_eq!(str_at(&v, "/actor/type"), "user");
            }
            if s.contains(&path_needle) {
                rare_path += 1;
                let v: Value = serde_json::from_str(s)?;
                assert_eq!(str_at(&v, "/request/path"), RARE_PATH);
                assert_eq!(str_at(&v, "/action_name"), "items.publish");
            }
        }
        // Expected 10 each (Binomial(1e6, 1e-5)).
        assert!((1..=40).contains(&rare_actor), "rare actor {rare_actor}");
        assert!((1..=40).contains(&rare_path), "rare path {rare_path}");
        Ok(())
    }

    #[test]
    fn average_size_and_payload_sizes() -> TestResult {
        let n = 100_000;
        let mut g = gen(42);
        let mut total = 0usize;
        let (mut min_item, mut max_item) = (usize::MAX, 0usize);
        for _ in 0..n {
            let v = g.next_event();
            total += json_len(&v)?;
            let resp = json_len(&v["response"]["payload"])?;
            assert!(resp < 400, "response payload {resp}");
            let action = str_at(&v, "/action_name");
            if action == "items.update" || action == "items.create" {
                let req = json_len(&v["request"]["payload"])?;
                min_item = min_item.min(req);
                max_item = max_item.max(req);
                let it = str_at(&v, "/request/payload/data/relationships/item_type/data/id");
                assert!(ITEM_TYPES.contains(&it));
                assert!(v.pointer("/request/payload/data/attributes").is_some());
            }
        }
        let avg = total / n;
        assert!((700..=950).contains(&avg), "average {avg}");
        assert!(min_item >= 200, "min item payload {min_item}");
        assert!(max_item <= 4096, "max item payload {max_item}");
        // The heavy tail exists.
        assert!(max_item >= 2048, "max item payload {max_item}");
        Ok(())
    }

    #[test]
    fn field_shapes_and_timestamps() -> TestResult {
        let mut g = EventGenerator::new(GenConfig {
            with_ids: true,
            ..GenConfig::default()
        });
        let mut watermark = i64::MIN;
        let mut late = 0usize;
        let n = 200_000;
        for _ in 0..n {
            let v = g.next_event();
            assert!(!str_at(&v, "/action_name").is_empty());
            assert!(!str_at(&v, "/actor/type").is_empty());
            let actor_id = str_at(&v, "/actor/id");
            assert!(
                actor_id == RARE_ACTOR_ID || actor_id.bytes().all(|b| b.is_ascii_digit()),
                "{actor_id}"
            );
            let ts = str_at(&v, "/occurred_at");
            assert_eq!(ts.len(), "2026-01-05T10:00:00.123456Z".len(), "{ts}");
            let micros = parse_micros(ts)?;
            let ulid = ulid::Ulid::from_string(str_at(&v, "/id"))?;
            assert_eq!(i64::try_from(ulid.timestamp_ms())?, micros.div_euclid(1000));
            assert!(str_at(&v, "/request/path").starts_with('/'));
            assert!(v["response"]["status"].is_u64());
            if micros < watermark {
                late += 1;
                assert!(watermark - micros <= 3_600_000_000, "too late");
            }
            watermark = watermark.max(micros);
        }
        // late_fraction 0.01 over 200k events.
        assert!((1_500..=2_500).contains(&late), "late {late}");
        // The stream advances at 1000 events/s.
        let span = watermark - parse_micros("2026-01-01T00:00:00Z")?;
        assert!((span - 200_000_000).abs() < 10_000, "span {span}");
        Ok(())
    }

    #[test]
    fn no_late_events_when_disabled() -> TestResult {
        let mut g = EventGenerator::new(GenConfig {
            late_fraction: 0.0,
            events_per_second: 50.0,
            ..GenConfig::default()
        });
        let mut prev = i64::MIN;
        for _ in 0..10_000 {
            let m = parse_micros(str_at(&g.next_event(), "/occurred_at"))?;
            assert!(m > prev);
            prev = m;
        }
        Ok(())
    }

    #[test]
    fn ids_do_not_change_other_fields() {
        let mut plain = gen(5);
        let mut with = EventGenerator::new(GenConfig {
            seed: 5,
            with_ids: true,
            ..GenConfig::default()
        });
        for _ in 0..1_000 {
            let a = plain.next_event();
            let mut b = with.next_event();
            let removed = b.as_object_mut().and_then(|m| m.remove("id"));
            assert!(removed.is_some());
            assert_eq!(a, b);
        }
    }

    #[test]
    fn rfc3339_formatter_matches_time_crate() -> TestResult {
        let mut r = Rand(fastrand::Rng::with_seed(1));
        let mut s = String::new();
        for _ in 0..100_000 {
            // Roughly years 1827..2112.
            let m = (r.below(1 << 53) as i64) - (1 << 52);
            s.clear();
            push_rfc3339_micros(&mut s, m);
            assert_eq!(parse_micros(&s)?, m, "{s}");
            let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(m) * 1000)?;
            assert_eq!(s.get(..19), t.format(&Rfc3339)?.get(..19));
        }
        s.clear();
        push_rfc3339_micros(&mut s, i64::MAX);
        assert_eq!(s, "9999-12-31T23:59:59.999999Z");
        s.clear();
        push_rfc3339_micros(&mut s, i64::MIN);
        assert_eq!(s, "0000-01-01T00:00:00.000000Z");
        Ok(())
    }

    #[test]
    fn iterator_and_escaping() -> TestResult {
        assert_eq!(gen(3).take(10).count(), 10);
        // The escaping and float paths of the byte sink match serde_json.
        let mut out = Vec::new();
        let mut sink = ByteSink {
            out: &mut out,
            need_comma: false,
        };
        sink.begin_object();
        sink.key("f");
        sink.f64(0.1);
        sink.key_array("k");
        sink.str("a\"b\\c\n\u{1}é\u{7f}");
        sink.f64(1.0);
        sink.null();
        sink.end_array();
        sink.end_object();
        let expected = serde_json::to_vec(
            &serde_json::json!({"f": 0.1, "k": ["a\"b\\c\n\u{1}é\u{7f}", 1.0, null]}),
        )?;
        assert_eq!(String::from_utf8(out)?, String::from_utf8(expected)?);
        Ok(())
    }

    #[test]
    fn needs_escape_has_no_false_negatives() {
        let mut r = Rand(fastrand::Rng::with_seed(9));
        for _ in 0..200_000 {
            let len = r.below(24) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| r.below(256) as u8).collect();
            let exact = bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
            if exact {
                assert!(needs_escape(&bytes), "{bytes:?}");
            }
        }
        assert!(!needs_escape(b"plain ascii text, no escapes at all"));
        assert!(!needs_escape("caf\u{e9} \u{1F600} ok".as_bytes()));
    }

    #[test]
    fn odd_configs_do_not_panic() {
        for (eps, late, late_max) in [
            (0.0, 0.5, 10),
            (f64::NAN, f64::NAN, -5),
            (1e-300, 1.0, i64::MAX),
            (1e12, 2.0, 1),
            (f64::INFINITY, -1.0, 0),
        ] {
            let mut g = EventGenerator::new(GenConfig {
                events_per_second: eps,
                late_fraction: late,
                late_max_secs: late_max,
                with_ids: true,
                ..GenConfig::default()
            });
            assert_eq!(
                g.ndjson_batch(200).iter().filter(|&&b| b == b'\n').count(),
                200
            );
        }
    }
}
