//! The site's build output under `/pkg`: the WASM, its JS glue and the stylesheet, and the parts
//! of the WASM loaded later (`cargo leptos build --split`: the chunks of lazy islands and the JS
//! that loads them). Each file is read once at start, given a name that carries a hash of its content (`baton.3f9a….wasm`) and
//! served from memory with a year of immutable caching, so a returning browser asks for nothing and
//! a new release is a new name. Each is compressed once, with brotli and gzip, and sent in the
//! encoding the browser prefers. The plain names keep working, revalidated by ETag.
//!
//! Under `cargo leptos watch` the files change while the server runs: they are then served from
//! disk as they are, and the pages name them plainly.

use axum::body::Body;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use tokio::sync::OnceCell;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The files of `/pkg` by the names they are served under, and the names the pages link to.
#[derive(Default)]
pub struct Assets {
    files: HashMap<String, Arc<Asset>>,
    /// `baton.<hash>`: the JS glue and the WASM share it (Leptos links both from one output name).
    pub output_name: Option<String>,
    /// `/pkg/baton.<hash>.css`.
    pub stylesheet: Option<String>,
    /// `/pkg/<part>.<hash>.wasm`: what the inside page's lazy island loads (its own part and the
    /// chunks it shares with the other lazy islands), which that page preloads.
    pub chunks: Vec<String>,
}

struct Asset {
    content_type: &'static str,
    etag: HeaderValue,
    immutable: bool,
    plain: bytes::Bytes,
    compressed: Arc<OnceCell<Compressed>>,
}

struct Compressed {
    brotli: bytes::Bytes,
    gzip: bytes::Bytes,
}

impl Assets {
    /// Reads `<site_root>/<pkg_dir>/<output_name>.{js,wasm,css}` and the split parts. Missing
    /// files (tests without a site build) or a watched dev build leave it empty, and the fallback
    /// serves from disk.
    pub fn load(options: &leptos::prelude::LeptosOptions) -> Self {
        if std::env::var_os("LEPTOS_WATCH").is_some() {
            return Self::default();
        }
        let dir = std::path::Path::new(options.site_root.as_ref()).join(options.site_pkg_dir.as_ref());
        let name = options.output_name.as_ref();
        let read = |file: &str| std::fs::read(dir.join(file)).ok();
        let (Some(js), Some(wasm)) = (read(&format!("{name}.js")), read(&format!("{name}.wasm"))) else {
            return Self::default();
        };
        let split = Split::read(&dir);
        let mut assets = Self::default();
        let mut parts: Vec<&[u8]> = vec![&js, &wasm];
        parts.extend(split.loader.iter().map(Vec::as_slice));
        parts.extend(split.chunks.iter().map(|(_, c)| c.as_slice()));
        let code_hash = short_hash(&parts);
        let output_name = format!("{name}.{code_hash}");
        // The hashed files name each other by their hashed names: a page of one release never
        // loads a part of another.
        let hashed = |file: &str| match file.rsplit_once('.') {
            Some((stem, ext)) => format!("{stem}.{code_hash}.{ext}"),
            None => file.to_owned(),
        };
        let js_hashed =
            rewrite_references(&js, &[(format!("./{SPLIT_LOADER}"), format!("./{}", hashed(SPLIT_LOADER)))]);
        assets.insert(format!("{output_name}.js"), "text/javascript", js_hashed, true);
        assets.insert(format!("{name}.js"), "text/javascript", js, false);
        assets.add(name, "wasm", &output_name, "application/wasm", wasm);
        if let Some(loader) = &split.loader {
            let mut names = vec![(format!("./{name}.js"), format!("./{output_name}.js"))];
            names.extend(split.chunks.iter().map(|(file, _)| (format!("./{file}"), format!("./{}", hashed(file)))));
            assets.insert(hashed(SPLIT_LOADER), "text/javascript", rewrite_references(loader, &names), true);
            assets.insert(SPLIT_LOADER.to_owned(), "text/javascript", loader.clone(), false);
        }
        let inside = split.parts_of("inside_island");
        for (file, chunk) in split.chunks {
            if inside.as_ref().is_none_or(|parts| parts.contains(&file)) {
                assets.chunks.push(format!("/{}/{}", options.site_pkg_dir, hashed(&file)));
            }
            assets.insert(hashed(&file), "application/wasm", chunk.clone(), true);
            assets.insert(file, "application/wasm", chunk, false);
        }
        // A server built without cargo-leptos (no LEPTOS_OUTPUT_NAME at compile time) links
        // wasm-bindgen's own name for the WASM: serve that too.
        for (alias, of) in [
            (format!("{output_name}_bg.wasm"), format!("{output_name}.wasm")),
            (format!("{name}_bg.wasm"), format!("{name}.wasm")),
        ] {
            if let Some(asset) = assets.files.get(&of).cloned() {
                assets.files.insert(alias, asset);
            }
        }
        if let Some(css) = read(&format!("{name}.css")) {
            let css_name = format!("{name}.{}", short_hash(&[&css]));
            assets.stylesheet = Some(format!("/{}/{css_name}.css", options.site_pkg_dir));
            assets.add(name, "css", &css_name, "text/css", css);
        }
        assets.output_name = Some(output_name);
        assets
    }

    fn add(&mut self, plain_name: &str, ext: &str, hashed_name: &str, content_type: &'static str, content: Vec<u8>) {
        let etag = etag_of(&content);
        let (plain, compressed) = (bytes::Bytes::from(content), Arc::new(OnceCell::new()));
        for (file, immutable) in [(format!("{hashed_name}.{ext}"), true), (format!("{plain_name}.{ext}"), false)] {
            let asset = Asset {
                content_type,
                etag: etag.clone(),
                immutable,
                plain: plain.clone(),
                compressed: compressed.clone(),
            };
            self.files.insert(file, Arc::new(asset));
        }
    }

    /// One file under one name.
    fn insert(&mut self, file: String, content_type: &'static str, content: Vec<u8>, immutable: bool) {
        let etag = etag_of(&content);
        let asset =
            Asset { content_type, etag, immutable, plain: content.into(), compressed: Arc::new(OnceCell::new()) };
        self.files.insert(file, Arc::new(asset));
    }

    /// Compresses every file in the background, so the first browser does not wait for it: one
    /// at a time, the largest (the WASM) first. A compressor holds its window's tables (tens of MB
    /// at brotli's best level): thirty of them at once took the server to 300 MB at start.
    pub fn precompress(&self) {
        let mut assets: Vec<_> = self.files.values().filter(|a| a.immutable).cloned().collect();
        assets.sort_by_key(|a| std::cmp::Reverse(a.plain.len()));
        tokio::spawn(async move {
            for asset in assets {
                asset.compressed().await;
            }
        });
    }
}

impl Asset {
    async fn compressed(&self) -> &Compressed {
        let plain = self.plain.clone();
        self.compressed
            .get_or_init(|| async move {
                // Brotli at its best level takes a second or two for the WASM: off the executor.
                tokio::task::spawn_blocking(move || Compressed { brotli: brotli(&plain), gzip: gzip(&plain) })
                    .await
                    .expect("compressing does not panic")
            })
            .await
    }
}

fn etag_of(content: &[u8]) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{}\"", short_hash(&[content]))).expect("hex is a valid header")
}

/// `content` with each file name `from` replaced by `to` where the JS imports or fetches it. Only
/// there: the WASM names the modules of its imports by the plain names too, and the glue must keep
/// offering them under those.
fn rewrite_references(content: &[u8], names: &[(String, String)]) -> Vec<u8> {
    let mut text = String::from_utf8_lossy(content).into_owned();
    for (from, to) in names {
        for quote in ['"', '\'', '`'] {
            for before in ["from", "from ", "URL(", "import("] {
                text = text.replace(&format!("{before}{quote}{from}{quote}"), &format!("{before}{quote}{to}{quote}"));
            }
        }
    }
    text.into_bytes()
}

/// The JS that loads the split parts; the main JS imports it under this name.
const SPLIT_LOADER: &str = "__wasm_split.______________________.js";

/// What `cargo leptos build --split` adds: the loader, each lazy island's part (`split_*.wasm`),
/// the chunks lazy islands share (`chunk_*.wasm`), and which island needs which (the manifest).
#[derive(Default)]
struct Split {
    loader: Option<Vec<u8>>,
    /// By file name, in name order.
    chunks: Vec<(String, Vec<u8>)>,
    /// `{"<island>_loader_<n>": ["chunk_5", …, "split_<island>_loader_<n>"]}`.
    manifest: serde_json::Map<String, serde_json::Value>,
}

impl Split {
    fn read(dir: &std::path::Path) -> Self {
        let Ok(loader) = std::fs::read(dir.join(SPLIT_LOADER)) else { return Self::default() };
        let mut chunks: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let file = entry.file_name().into_string().ok()?;
                let is_chunk = (file.starts_with("split_") || file.starts_with("chunk_")) && file.ends_with(".wasm");
                is_chunk.then(|| Some((file, std::fs::read(entry.path()).ok()?))).flatten()
            })
            .collect();
        chunks.sort();
        let manifest = std::fs::read(dir.join("__wasm_split_manifest.json"))
            .ok()
            .and_then(|m| serde_json::from_slice(&m).ok())
            .unwrap_or_default();
        Self { loader: Some(loader), chunks, manifest }
    }

    /// The files (`chunk_5.wasm`, `split_….wasm`) the lazy island named `island` loads; `None`
    /// without a manifest that names it.
    fn parts_of(&self, island: &str) -> Option<Vec<String>> {
        let (_, parts) = self.manifest.iter().find(|(key, _)| key.starts_with(island))?;
        Some(parts.as_array()?.iter().filter_map(|p| Some(format!("{}.wasm", p.as_str()?))).collect())
    }
}

fn short_hash(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Files above this are a dev build's debug WASM (a release one is about 0.4 MB): brotli's best
/// level took half a minute for its 4 MB, which the first page load waited for.
const BEST_LEVEL_UP_TO: usize = 1 << 20;

fn brotli(data: &[u8]) -> bytes::Bytes {
    let mut out = Vec::with_capacity(data.len() / 3);
    {
        let quality = if data.len() <= BEST_LEVEL_UP_TO { 11 } else { 5 };
        // A window no larger than the file (its tables grow with it): the same output, less memory.
        // (A window of 2^w bytes holds 2^w - 16 of them.)
        let window = (usize::BITS - (data.len() + 16).leading_zeros()).clamp(10, 22);
        let mut writer = brotli::CompressorWriter::new(&mut out, 64 * 1024, quality, window);
        writer.write_all(data).expect("writing to memory");
    }
    out.into()
}

fn gzip(data: &[u8]) -> bytes::Bytes {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).expect("writing to memory");
    encoder.finish().expect("writing to memory").into()
}

/// `GET /pkg/{file}`: from memory, in the best encoding the client accepts; `None` for a file
/// this does not hold (the site's fallback then looks on disk).
pub async fn serve(assets: &Assets, file: &str, request: &HeaderMap) -> Option<Response> {
    let asset = assets.files.get(file)?;
    let cache = HeaderValue::from_static(if asset.immutable { IMMUTABLE } else { REVALIDATE });
    let mut res = if request.get(header::IF_NONE_MATCH).is_some_and(|tag| etag_matches(tag, &asset.etag)) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let (encoding, body) = match preferred_encoding(request) {
            Encoding::Brotli => (Some("br"), asset.compressed().await.brotli.clone()),
            Encoding::Gzip => (Some("gzip"), asset.compressed().await.gzip.clone()),
            Encoding::Identity => (None, asset.plain.clone()),
        };
        let mut res = Response::new(Body::from(body));
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        if let Some(encoding) = encoding {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        res
    };
    let headers = res.headers_mut();
    headers.insert(header::CACHE_CONTROL, cache);
    headers.insert(header::ETAG, asset.etag.clone());
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    Some(res)
}

fn etag_matches(if_none_match: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(tags) = if_none_match.to_str() else { return false };
    let etag = etag.to_str().unwrap_or_default();
    tags.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == "*" || t == etag)
}

#[derive(Debug, PartialEq)]
enum Encoding {
    Brotli,
    Gzip,
    Identity,
}

/// Brotli if accepted, else gzip, else none; a coding with `q=0` is refused.
fn preferred_encoding(request: &HeaderMap) -> Encoding {
    let accepted: Vec<String> = request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|item| {
            let mut parts = item.split(';');
            let coding = parts.next()?.trim().to_ascii_lowercase();
            let refused = parts
                .any(|p| matches!(p.trim().strip_prefix("q="), Some(q) if q.trim().parse::<f32>().ok() == Some(0.0)));
            (!refused).then_some(coding)
        })
        .collect();
    if accepted.iter().any(|c| c == "br") {
        Encoding::Brotli
    } else if accepted.iter().any(|c| c == "gzip") {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}
