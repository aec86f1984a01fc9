//! This browser's DPoP key (RFC 9449, see the server's `auth::dpop`): a P-256 key pair made by
//! WebCrypto as *non-extractable* and kept in IndexedDB, so every tab of this origin signs with
//! the same key and no script can read its private half, only ask it to sign while it runs in
//! the page. Logins and signups send a proof, binding the session to the key; refreshes and
//! protected calls of a bound session send one too.
//!
//! Where WebCrypto or IndexedDB is missing (an old browser, a page that is not a secure context,
//! storage blocked) no proof is made and the session is a bearer session; the inside page says so.

use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use std::cell::RefCell;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};

const DATABASE: &str = "baton";
const STORE: &str = "keys";
const KEY_NAME: &str = "dpop";

/// The key in memory once read: the private half (usable, not readable) and the public JWK's
/// coordinates.
#[derive(Clone)]
struct Key {
    private: CryptoKey,
    x: String,
    y: String,
}

/// What this tab has found out about its key.
#[derive(Clone)]
enum Found {
    NotYet,
    /// Tried: this browser cannot keep a key.
    Nothing,
    Key(Key),
}

thread_local! {
    static KEY: RefCell<Found> = const { RefCell::new(Found::NotYet) };
}

/// A proof for `method` `url` (with `ath` for `access_token`), or `None` where there is no key.
pub async fn proof(method: &str, url: &str, access_token: Option<&str>) -> Option<String> {
    let key = key().await?;
    let subtle = subtle()?;
    let htu = url.split(['?', '#']).next().unwrap_or(url);
    let mut jti = [0u8; 16];
    web_sys::window()?.crypto().ok()?.get_random_values_with_u8_array(&mut jti).ok()?;
    let iat = (js_sys::Date::now() / 1000.0).floor() as i64;
    let ath = match access_token {
        Some(token) => {
            let digest =
                JsFuture::from(subtle.digest_with_str_and_u8_array("SHA-256", token.as_bytes()).ok()?).await.ok()?;
            format!(r#","ath":"{}""#, b64url(&Uint8Array::new(&digest).to_vec()))
        }
        None => String::new(),
    };
    let header = format!(
        r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}}}"#,
        key.x, key.y
    );
    let claims = format!(
        r#"{{"jti":"{}","htm":"{method}","htu":{},"iat":{iat}{ath}}}"#,
        b64url(&jti),
        serde_json::to_string(htu).ok()?
    );
    let input = format!("{}.{}", b64url(header.as_bytes()), b64url(claims.as_bytes()));
    let algorithm = web_sys::EcdsaParams::new_with_str("ECDSA", "SHA-256");
    let signing = subtle.sign_with_object_and_u8_array(&algorithm, &key.private, input.as_bytes()).ok()?;
    // WebCrypto's ECDSA signature is r ‖ s, 64 bytes: what JWS wants.
    let signature = JsFuture::from(signing).await.ok()?;
    Some(format!("{input}.{}", b64url(&Uint8Array::new(&signature).to_vec())))
}

/// The key, read from IndexedDB or made there on first use; `None` where that is impossible.
async fn key() -> Option<Key> {
    match KEY.with(|k| k.borrow().clone()) {
        Found::Key(key) => return Some(key),
        Found::Nothing => return None,
        Found::NotYet => {}
    }
    let key = load_or_create().await.ok();
    KEY.with(|k| *k.borrow_mut() = key.clone().map_or(Found::Nothing, Found::Key));
    key
}

async fn load_or_create() -> Result<Key, JsValue> {
    let db = open().await?;
    let pair = match get(&db).await? {
        Some(pair) => pair,
        None => {
            let subtle = subtle().ok_or(JsValue::NULL)?;
            let params = web_sys::EcKeyGenParams::new("ECDSA", "P-256");
            let usages = Array::of2(&"sign".into(), &"verify".into());
            // Not extractable: the private key can sign, never be read, by any script.
            let made = JsFuture::from(subtle.generate_key_with_object(&params, false, &usages)?).await?;
            // Another tab may have stored its own meanwhile: theirs wins, every tab uses one key.
            let _ =
                request(&store(&db, web_sys::IdbTransactionMode::Readwrite)?.add_with_key(&made, &KEY_NAME.into())?)
                    .await;
            get(&db).await?.ok_or(JsValue::NULL)?
        }
    };
    let private: CryptoKey = Reflect::get(&pair, &"privateKey".into())?.dyn_into()?;
    let public: CryptoKey = Reflect::get(&pair, &"publicKey".into())?.dyn_into()?;
    let jwk = JsFuture::from(subtle().ok_or(JsValue::NULL)?.export_key("jwk", &public)?).await?;
    let coordinate =
        |name: &str| Reflect::get(&jwk, &name.into()).ok().and_then(|v| v.as_string()).ok_or(JsValue::NULL);
    Ok(Key { private, x: coordinate("x")?, y: coordinate("y")? })
}

fn subtle() -> Option<SubtleCrypto> {
    Some(web_sys::window()?.crypto().ok()?.subtle())
}

async fn open() -> Result<web_sys::IdbDatabase, JsValue> {
    let factory = web_sys::window().ok_or(JsValue::NULL)?.indexed_db()?.ok_or(JsValue::NULL)?;
    let opening = factory.open_with_u32(DATABASE, 1)?;
    let upgrade = wasm_bindgen::closure::Closure::once_into_js(move |event: web_sys::Event| {
        let db = event
            .target()
            .and_then(|t| t.dyn_into::<web_sys::IdbOpenDbRequest>().ok())
            .and_then(|r| r.result().ok())
            .and_then(|db| db.dyn_into::<web_sys::IdbDatabase>().ok());
        if let Some(db) = db {
            let _ = db.create_object_store(STORE);
        }
    });
    opening.set_onupgradeneeded(Some(upgrade.unchecked_ref()));
    request(&opening).await?.dyn_into()
}

fn store(db: &web_sys::IdbDatabase, mode: web_sys::IdbTransactionMode) -> Result<web_sys::IdbObjectStore, JsValue> {
    db.transaction_with_str_and_mode(STORE, mode)?.object_store(STORE)
}

async fn get(db: &web_sys::IdbDatabase) -> Result<Option<Object>, JsValue> {
    let found = request(&store(db, web_sys::IdbTransactionMode::Readonly)?.get(&KEY_NAME.into())?).await?;
    Ok(found.dyn_into::<Object>().ok())
}

/// An IndexedDB request as a future: its result, or its error.
async fn request(req: &web_sys::IdbRequest) -> Result<JsValue, JsValue> {
    let done = Promise::new(&mut |resolve, reject| {
        req.set_onsuccess(Some(&resolve));
        req.set_onerror(Some(&reject));
    });
    JsFuture::from(done).await?;
    req.result()
}

/// Base64url without padding (RFC 4648 §5), as JWS wants it.
fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}
