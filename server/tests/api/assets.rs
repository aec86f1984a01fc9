//! `/pkg`: the site's build output under names that carry its content's hash, compressed once
//! with brotli and gzip, cached for a year; the plain names revalidated by ETag.

use crate::common::{spawn_app_serving, temp_dir, TestApp};
use reqwest::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY};
use std::io::Read;

/// A site root with a build output of its own: compressible, and different in each test.
async fn app_with_site() -> (TestApp, Vec<u8>) {
    let root = temp_dir();
    std::fs::create_dir_all(root.join("pkg")).unwrap();
    let wasm: Vec<u8> = format!("\0asm {} ", uuid::Uuid::new_v4()).repeat(2000).into_bytes();
    std::fs::write(root.join("pkg/baton.wasm"), &wasm).unwrap();
    std::fs::write(root.join("pkg/baton.js"), "export function hydrate() {}\n".repeat(200)).unwrap();
    std::fs::write(root.join("pkg/baton.css"), "body { margin: 0 }\n".repeat(200)).unwrap();
    (spawn_app_serving(&root).await, wasm)
}

async fn get(app: &TestApp, path: &str, headers: &[(reqwest::header::HeaderName, &str)]) -> reqwest::Response {
    let mut req = app.http.get(format!("{}{path}", app.base));
    for (name, value) in headers {
        req = req.header(name, *value);
    }
    req.send().await.unwrap()
}

fn header(res: &reqwest::Response, name: reqwest::header::HeaderName) -> String {
    res.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

#[tokio::test]
async fn pages_link_hashed_names_that_are_compressed_and_immutable() {
    let (app, wasm) = app_with_site().await;
    let html = get(&app, "/login", &[]).await.text().await.unwrap();
    let linked = |ext: &str| {
        let at = html.find(&format!(".{ext}\"")).unwrap_or_else(|| panic!("no .{ext} in the page"));
        let start = html[..at].rfind("/pkg/baton.").unwrap();
        let path = &html[start..at + ext.len() + 1];
        // A build without cargo-leptos links wasm-bindgen's `_bg` name for the WASM.
        let hash = path["/pkg/baton.".len()..path.len() - ext.len() - 1].trim_end_matches("_bg");
        assert!(hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()), "{path}");
        path.to_owned()
    };
    let (wasm_path, js_path, css_path) = (linked("wasm"), linked("js"), linked("css"));
    assert_eq!(
        wasm_path.trim_end_matches(".wasm").trim_end_matches("_bg"),
        js_path.trim_end_matches(".js"),
        "one output name"
    );

    let brotli = get(&app, &wasm_path, &[(ACCEPT_ENCODING, "gzip, deflate, br")]).await;
    assert_eq!(brotli.status(), 200);
    assert_eq!(header(&brotli, CONTENT_ENCODING), "br");
    assert_eq!(header(&brotli, CONTENT_TYPE), "application/wasm");
    assert_eq!(header(&brotli, CACHE_CONTROL), "public, max-age=31536000, immutable");
    assert_eq!(header(&brotli, VARY), "accept-encoding");
    let body = brotli.bytes().await.unwrap();
    assert!(body.len() < wasm.len() / 10, "{} bytes compressed", body.len());
    let mut decoded = Vec::new();
    brotli::Decompressor::new(&body[..], 4096).read_to_end(&mut decoded).unwrap();
    assert_eq!(decoded, wasm);

    let gzip = get(&app, &js_path, &[(ACCEPT_ENCODING, "gzip")]).await;
    assert_eq!(header(&gzip, CONTENT_ENCODING), "gzip");
    assert_eq!(header(&gzip, CONTENT_TYPE), "text/javascript");
    let mut decoded = String::new();
    flate2::read::GzDecoder::new(&gzip.bytes().await.unwrap()[..]).read_to_string(&mut decoded).unwrap();
    assert!(decoded.starts_with("export function hydrate()"));

    // Refused with q=0, or not offered: the next best, then none.
    let refused = get(&app, &css_path, &[(ACCEPT_ENCODING, "br;q=0, gzip;q=0.5")]).await;
    assert_eq!(header(&refused, CONTENT_ENCODING), "gzip");
    let plain = get(&app, &css_path, &[(ACCEPT_ENCODING, "identity")]).await;
    assert_eq!(header(&plain, CONTENT_ENCODING), "");
    assert_eq!(header(&plain, CONTENT_TYPE), "text/css");
    assert!(plain.text().await.unwrap().starts_with("body { margin: 0 }"));
}

#[tokio::test]
async fn plain_names_are_revalidated_by_etag() {
    let (app, wasm) = app_with_site().await;
    let res = get(&app, "/pkg/baton.wasm", &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, CACHE_CONTROL), "no-cache");
    let etag = header(&res, ETAG);
    assert_eq!(res.bytes().await.unwrap(), wasm);

    for matching in [etag.clone(), format!("\"0000000000000000\", W/{etag}"), "*".into()] {
        let again = get(&app, "/pkg/baton.wasm", &[(IF_NONE_MATCH, &matching)]).await;
        assert_eq!(again.status(), 304, "If-None-Match: {matching}");
        assert_eq!(header(&again, ETAG), etag);
    }
    let changed = get(&app, "/pkg/baton.wasm", &[(IF_NONE_MATCH, "\"0000000000000000\"")]).await;
    assert_eq!(changed.status(), 200);
    // Files the build did not name stay on disk and a missing one is a 404.
    assert_eq!(get(&app, "/pkg/nothing.js", &[]).await.status(), 404);
}

/// `cargo leptos build --split`: the JS that loads the lazy islands' chunks, and the chunks, carry
/// the same hash as the main files and name each other by it, so a page never mixes releases.
#[tokio::test]
async fn split_parts_share_the_hash_and_name_each_other_by_it() {
    let root = temp_dir();
    std::fs::create_dir_all(root.join("pkg")).unwrap();
    let chunk: Vec<u8> = format!("\0asm chunk {} ", uuid::Uuid::new_v4()).repeat(500).into_bytes();
    std::fs::write(root.join("pkg/baton.wasm"), b"\0asm main").unwrap();
    std::fs::write(root.join("pkg/baton.js"), "import * as s from \"./__wasm_split.______________________.js\";\n")
        .unwrap();
    // Two lazy islands, and a chunk of code they share (`chunk_5`), as the manifest says.
    let loader = "import { initSync } from \"./baton.js\";\nfetch(new URL(\"./split_inside_7.wasm\", import.meta.url));\n\
                  fetch(new URL(\"./split_forgot_3.wasm\", import.meta.url));\nfetch(new URL(\"./chunk_5.wasm\", import.meta.url));\n";
    std::fs::write(root.join("pkg/__wasm_split.______________________.js"), loader).unwrap();
    std::fs::write(root.join("pkg/split_inside_7.wasm"), &chunk).unwrap();
    std::fs::write(root.join("pkg/split_forgot_3.wasm"), b"\0asm forgot").unwrap();
    std::fs::write(root.join("pkg/chunk_5.wasm"), b"\0asm shared").unwrap();
    let manifest = r#"{"inside_island_loader_7": ["chunk_5", "split_inside_7"], "forgot_page_loader_3": ["chunk_5", "split_forgot_3"]}"#;
    std::fs::write(root.join("pkg/__wasm_split_manifest.json"), manifest).unwrap();
    let app = spawn_app_serving(&root).await;

    let html = get(&app, "/login", &[]).await.text().await.unwrap();
    let start = html.find("/pkg/baton.").unwrap();
    let hash = &html[start + "/pkg/baton.".len()..][..16];
    let js = get(&app, &format!("/pkg/baton.{hash}.js"), &[]).await.text().await.unwrap();
    let hashed_loader = format!("__wasm_split.______________________.{hash}.js");
    assert!(js.contains(&format!("\"./{hashed_loader}\"")), "{js}");

    let res = get(&app, &format!("/pkg/{hashed_loader}"), &[]).await;
    assert_eq!(header(&res, CACHE_CONTROL), "public, max-age=31536000, immutable");
    assert_eq!(header(&res, CONTENT_TYPE), "text/javascript");
    let hashed_loader = res.text().await.unwrap();
    // The chunk joins the page's own instance of the glue, not a second one under the plain name.
    assert!(hashed_loader.contains(&format!("from \"./baton.{hash}.js\"")), "{hashed_loader}");
    for part in ["split_inside_7", "split_forgot_3", "chunk_5"] {
        assert!(hashed_loader.contains(&format!("\"./{part}.{hash}.wasm\"")), "{part}: {hashed_loader}");
        let res = get(&app, &format!("/pkg/{part}.{hash}.wasm"), &[]).await;
        assert_eq!(header(&res, CACHE_CONTROL), "public, max-age=31536000, immutable", "{part}");
    }

    let res = get(&app, &format!("/pkg/split_inside_7.{hash}.wasm"), &[(ACCEPT_ENCODING, "br")]).await;
    assert_eq!(header(&res, CACHE_CONTROL), "public, max-age=31536000, immutable");
    assert_eq!(header(&res, CONTENT_TYPE), "application/wasm");
    assert_eq!(header(&res, CONTENT_ENCODING), "br");
    let mut decoded = Vec::new();
    brotli::Decompressor::new(&res.bytes().await.unwrap()[..], 4096).read_to_end(&mut decoded).unwrap();
    assert_eq!(decoded, chunk);

    // The inside page (the lazy island's) has the browser fetch the chunk with the page.
    let inside = get(&app, "/inside", &[]).await.text().await.unwrap();
    let at = inside.find(&format!("href=\"/pkg/split_inside_7.{hash}.wasm\"")).expect("the chunk is preloaded");
    let (start, end) = (inside[..at].rfind('<').unwrap(), at + inside[at..].find('>').unwrap());
    let link = &inside[start..=end];
    for attribute in
        ["<link ", "rel=\"preload\"", "as=\"fetch\"", "type=\"application/wasm\"", "crossorigin=\"anonymous\""]
    {
        assert!(link.contains(attribute), "{attribute} in {link}");
    }
    assert!(inside.contains(&format!("href=\"/pkg/chunk_5.{hash}.wasm\"")), "the shared chunk is preloaded too");
    // Not another lazy island's part: the inside page does not load it.
    assert!(!inside.contains("split_forgot_3"), "{inside}");
    assert!(!html.contains("split_inside_7") && !html.contains("chunk_5"), "not on /login");

    // The plain names: as built, revalidated.
    let res = get(&app, "/pkg/__wasm_split.______________________.js", &[]).await;
    assert_eq!(header(&res, CACHE_CONTROL), "no-cache");
    assert_eq!(res.text().await.unwrap(), loader);
}
