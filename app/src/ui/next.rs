//! The `next` parameter of `/login` and `/signup`: the page to open after logging in. The guard
//! writes it; the login form follows it only if it stays on this site.

/// Where a login without a (usable) `next` goes.
pub const DEFAULT: &str = "/inside";

/// The pages a login may lead to.
#[cfg(feature = "hydrate")]
const APP_PAGES: [&str; 2] = ["/", "/inside"];

/// Percent-encodes a path (with its query) as the value of a query parameter.
pub fn encode(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `next` resolved as a URL against this page's origin, the way the browser itself would read
/// it, and kept only when it stays on this origin: `/\evil.example`, `/\t/evil.example`,
/// `//evil.example` and `https://evil.example/` all leave, so they give [`DEFAULT`], as do the
/// login and signup pages. Returns the path, query and fragment of what stays.
pub fn resolve(next: Option<&str>) -> String {
    #[cfg(feature = "hydrate")]
    if let Some(path) = next.and_then(same_origin_path) {
        return path;
    }
    let _ = next;
    DEFAULT.to_owned()
}

#[cfg(feature = "hydrate")]
fn same_origin_path(next: &str) -> Option<String> {
    let origin = leptos::prelude::window().location().origin().ok()?;
    let url = web_sys::Url::new_with_base(next, &origin).ok()?;
    let path = format!("{}{}{}", url.pathname(), url.search(), url.hash());
    // A path that starts with `//` is read as another host by whoever resolves it next. Only the
    // app's own pages past the login: the login pages lead nowhere after a login, and a page that
    // runs none of the app's code (`/healthz`, `/api/…`, `/pkg/…`) would leave what the tab hands
    // to the next page in its name.
    let app_page = APP_PAGES.contains(&url.pathname().as_str());
    (url.origin() == origin && path.starts_with('/') && !path.starts_with("//") && app_page).then_some(path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_query_and_fragment_characters() {
        assert_eq!(super::encode("/inside?tab=a&b=c#x"), "/inside%3Ftab%3Da%26b%3Dc%23x");
        assert_eq!(super::encode("/a b"), "/a%20b");
    }
}
